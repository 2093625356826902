"""Configuration of every service and the CLI: the only module that reads the environment.

Every variable has the prefix ``WEBHOOKS_`` and a working local default, so
``webhooks up`` runs with none set. The OpenTelemetry SDK reads its own standard
``OTEL_*`` variables; only whether an OTLP endpoint is set is looked at here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PREFIX = "WEBHOOKS_"

DEFAULT_ADDRESSES = {
    "subscriptions": "127.0.0.1:50051",
    "router": "127.0.0.1:50052",
    "sender": "127.0.0.1:50053",
    "failures": "127.0.0.1:50054",
    "console": "127.0.0.1:8080",  # HTTP, not gRPC: the admin console in the browser
}
SERVICES = tuple(DEFAULT_ADDRESSES)
# The Prometheus endpoints ``webhooks up`` turns on unless WEBHOOKS_<SERVICE>_METRICS_ADDR
# is set (``webhooks serve`` alone has none: see Settings.metrics_addresses).
UP_METRICS_ADDRESSES = {
    "subscriptions": "127.0.0.1:9451",
    "router": "127.0.0.1:9452",
    "sender": "127.0.0.1:9453",
    "failures": "127.0.0.1:9454",
    "console": "127.0.0.1:9455",
}


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    nats_url: str | None  # None: not configured (``up`` starts an embedded server)
    store: str  # "sqlite" or "postgres"
    postgres_url: str
    postgres_schema: str
    secret_keys: tuple[str, ...]  # Fernet keys, the first seals; empty: the data dir's key file
    tokens_json: str | None
    tokens_file: Path | None
    addresses: Mapping[str, str]
    grpc_max_message_bytes: int
    allow_http_loopback: bool
    signing_secret_overlap_seconds: int
    relay_poll_seconds: float
    otlp_endpoint: str | None
    # Prometheus endpoints (host:port) of the services that have one (issue 14): unset or
    # empty = none, so parallel test stacks never collide; ``webhooks up`` sets them.
    metrics_addresses: Mapping[str, str]
    metrics_host: str  # the host of a metrics address given as a port alone
    metrics_tenant_label: bool  # a webhooks.tenant attribute on the delivery instruments
    service_name_suffix: str
    log_level: str
    tenant: str  # the CLI's tenant when its token is a platform token
    token: str | None  # the CLI's token; None: the data dir's development token
    events_max_age_seconds: int
    events_max_bytes: int
    attempts_max_age_seconds: int
    duplicate_window_seconds: int
    stream_replicas: int  # replicas of every stream (1 on one server, 3 on a 3-node cluster)
    router_max_batch: int  # events per PublishEvents call
    # A tenant's events within this rate (events/s) and burst take the standard lane; the
    # rest the bulk lane (the router's lanes.py).
    tenant_standard_rate: int
    tenant_standard_burst: int
    min_retry_interval_seconds: int  # the shortest retry interval a subscription may ask
    # The sender and every outbound request (webhooks, OAuth token URLs, WSDL fetches).
    sender_timeout_seconds: float  # per attempt
    sender_concurrency: int  # requests in flight per sender process
    sender_endpoint_concurrency: int  # of which to one endpoint (scheme, host, port)
    # The part (0-1] of an endpoint's slots and waiting room one subscription may hold.
    sender_subscription_share: float
    retry_after_max_seconds: int  # a Retry-After beyond this is cut to it
    # Endpoint health (docs/operations.md, "Endpoint health"; libs/webhooks_health).
    health_breaker_failure_percent: int  # the circuit opens at this share of failures
    health_breaker_min_requests: int  # over at least this many attempts
    health_breaker_window_seconds: int  # made in this window (per sender replica)
    health_breaker_cooldown_seconds: int  # then deliveries wait this long for one probe
    health_breaker_cooldown_max_seconds: int  # the cool-down doubles per failed probe to this
    health_failing_after: int  # consecutive failed attempts that make an endpoint failing
    health_disable_after_seconds: int  # failing this long (and min attempts) disables it
    health_disable_min_attempts: int  # attempts in the streak before it may be disabled
    health_throttle_min_seconds: int  # a throttle without Retry-After waits this, doubling
    health_throttle_max_seconds: int  # to at most this
    health_exhausted_notice_seconds: int  # at most one OnRetriesExhausted per this, per webhook
    health_certificate_warning_days: int  # OnCertificateExpiring this long before expiry
    health_certificate_check_seconds: int  # how often certificates are looked at
    outbound_allow: tuple[str, ...]  # networks (CIDR) the outbound guard admits anyway
    dns_servers: tuple[str, ...]  # "host" or "host:port"; empty: the system resolver
    ca_bundle: Path | None  # PEM CA certificates trusted instead of the system's
    failures_max_age_seconds: int  # failed events older than this leave the view
    # The admin console.
    console_session_keys: tuple[str, ...]  # Fernet keys sealing sessions; empty: a key file
    console_session_seconds: int  # a sign-in lasts this long
    console_proxy_hops: int  # reverse proxies in front whose X-Forwarded-* are believed
    console_signin_per_minute: int  # sign-in attempts per client address
    # NATS authentication (nkey seed or .creds file) and TLS; None: as the server allows.
    nats_nkey_seed_file: Path | None = None
    nats_credentials: Path | None = None
    nats_tls_ca: Path | None = None
    nats_tls_cert: Path | None = None
    nats_tls_key: Path | None = None

    def address(self, service: str) -> str:
        return self.addresses[service]

    @property
    def default_tokens_file(self) -> Path:
        return self.data_dir / "tokens.json"

    @property
    def dev_token_file(self) -> Path:
        return self.data_dir / "dev-token"

    @property
    def nats_auth_dir(self) -> Path:
        """The NATS credentials ``webhooks up`` makes (webhooks_messaging.auth)."""
        return self.data_dir / "nats-auth"

    @property
    def secret_keys_file(self) -> Path:
        return self.data_dir / "secret-keys"

    @property
    def console_session_keys_file(self) -> Path:
        return self.data_dir / "console-session-keys"

    def sqlite_path(self, name: str) -> Path:
        return self.data_dir / f"{name}.sqlite"


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(PREFIX + name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{PREFIX}{name}: not an integer: {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{PREFIX}{name}: must be between {low} and {high}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(PREFIX + name, "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{PREFIX}{name}: expected true or false, got {raw!r}")


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in env.get(PREFIX + name, "").split(",") if item.strip())


def _path(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(PREFIX + name, "").strip()
    return Path(raw) if raw else None


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    # Each group reads its own variables; Settings refuses a field missing or given twice.
    return Settings(
        **_storage(env),
        **_services(env),
        **_retention(env),
        **_sender(env),
        **_health(env),
        **_console(env),
        **_nats(env),
    )


def _storage(env: Mapping[str, str]) -> dict[str, Any]:
    """Where state lives: the data dir, the store, the secret keys and the tokens."""
    store = env.get(PREFIX + "STORE", "sqlite").strip().lower()
    if store not in ("sqlite", "postgres"):
        raise ConfigError(f"{PREFIX}STORE: expected sqlite or postgres, got {store!r}")
    keys = tuple(k.strip() for k in env.get(PREFIX + "SECRET_KEYS", "").split(",") if k.strip())
    tokens_file = env.get(PREFIX + "TOKENS_FILE")
    return {
        "data_dir": Path(env.get(PREFIX + "DATA_DIR", ".webhooks")).absolute(),
        "store": store,
        "postgres_url": env.get(
            PREFIX + "POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
        "postgres_schema": env.get(PREFIX + "POSTGRES_SCHEMA", "webhooks"),
        "secret_keys": keys,
        "tokens_json": env.get(PREFIX + "TOKENS") or None,
        "tokens_file": Path(tokens_file) if tokens_file else None,
    }


def _services(env: Mapping[str, str]) -> dict[str, Any]:
    """How the services and the CLI reach each other, what they log, and their policies."""
    return {
        "addresses": {
            service: env.get(f"{PREFIX}{service.upper()}_ADDR", default)
            for service, default in DEFAULT_ADDRESSES.items()
        },
        "grpc_max_message_bytes": _int(
            env, "GRPC_MAX_MESSAGE_BYTES", 4 * 1024 * 1024, 64 * 1024, 64 * 1024 * 1024
        ),
        "allow_http_loopback": _bool(env, "ALLOW_HTTP_LOOPBACK", False),
        "signing_secret_overlap_seconds": _int(
            env, "SIGNING_SECRET_OVERLAP_SECONDS", 24 * 3600, 0, 30 * 24 * 3600
        ),
        "relay_poll_seconds": _int(env, "RELAY_POLL_MS", 1000, 10, 60_000) / 1000,
        "otlp_endpoint": env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None,
        "metrics_addresses": {
            service: address
            for service in SERVICES
            if (address := env.get(f"{PREFIX}{service.upper()}_METRICS_ADDR", "").strip())
        },
        "metrics_host": env.get(PREFIX + "METRICS_HOST", "").strip() or "127.0.0.1",
        "metrics_tenant_label": _bool(env, "METRICS_TENANT_LABEL", False),
        "service_name_suffix": env.get(PREFIX + "INSTANCE", ""),
        "log_level": env.get(PREFIX + "LOG_LEVEL", "INFO").upper(),
        "tenant": env.get(PREFIX + "TENANT", "default"),
        "token": env.get(PREFIX + "TOKEN") or None,
        "router_max_batch": _int(env, "ROUTER_MAX_BATCH", 1000, 1, 100_000),
        "tenant_standard_rate": _int(env, "TENANT_STANDARD_RATE", 200, 1, 1_000_000),
        "tenant_standard_burst": _int(env, "TENANT_STANDARD_BURST", 2000, 1, 10_000_000),
        "min_retry_interval_seconds": _int(env, "MIN_RETRY_INTERVAL_SECONDS", 10, 1, 86400),
    }


def _retention(env: Mapping[str, str]) -> dict[str, Any]:
    """How long the streams and the failures view keep what they hold, and on how many servers."""
    return {
        "events_max_age_seconds": _int(env, "EVENTS_MAX_AGE_SECONDS", 7 * 86400, 60, 365 * 86400),
        "events_max_bytes": _int(env, "EVENTS_MAX_BYTES", -1, -1, 2**50),
        "attempts_max_age_seconds": _int(
            env, "ATTEMPTS_MAX_AGE_SECONDS", 30 * 86400, 60, 3650 * 86400
        ),
        "duplicate_window_seconds": _int(env, "DUPLICATE_WINDOW_SECONDS", 120, 1, 7 * 86400),
        "stream_replicas": _int(env, "STREAM_REPLICAS", 1, 1, 5),
        "failures_max_age_seconds": _int(
            env, "FAILURES_MAX_AGE_SECONDS", 30 * 86400, 60, 3650 * 86400
        ),
    }


def _sender(env: Mapping[str, str]) -> dict[str, Any]:
    """The sender and every outbound request (webhooks, OAuth token URLs, WSDL fetches)."""
    return {
        "sender_timeout_seconds": _int(env, "SENDER_TIMEOUT_MS", 15_000, 100, 300_000) / 1000,
        "sender_concurrency": _int(env, "SENDER_CONCURRENCY", 1024, 1, 100_000),
        "sender_endpoint_concurrency": _int(env, "SENDER_ENDPOINT_CONCURRENCY", 64, 1, 10_000),
        # The part of an origin's slots and waiting room one subscription may hold: below
        # 100 so that a subscription that turned slow leaves room for the others; high
        # enough that one alone on its origin keeps most of the origin's concurrency.
        "sender_subscription_share": _int(env, "SENDER_SUBSCRIPTION_SHARE", 75, 1, 100) / 100,
        "retry_after_max_seconds": _int(env, "RETRY_AFTER_MAX_SECONDS", 3600, 1, 86400),
        "outbound_allow": _list(env, "OUTBOUND_ALLOW"),
        "dns_servers": _list(env, "DNS_SERVERS"),
        "ca_bundle": Path(env[PREFIX + "CA_BUNDLE"]) if env.get(PREFIX + "CA_BUNDLE") else None,
    }


def _health(env: Mapping[str, str]) -> dict[str, Any]:
    """Endpoint health: the circuit breaker, auto-disable, throttling, operator events.

    The breaker's default is the anchor's rule (at least 70 % of at least 10 attempts in
    5 minutes fail: deliveries wait 30 s, then one probe decides); an endpoint failing
    without a success for 5 days (and at least 10 attempts) is disabled, as one anchor does.
    """
    day = 86400
    return {
        "health_breaker_failure_percent": _int(env, "HEALTH_BREAKER_FAILURE_PERCENT", 70, 1, 100),
        "health_breaker_min_requests": _int(env, "HEALTH_BREAKER_MIN_REQUESTS", 10, 1, 100_000),
        "health_breaker_window_seconds": _int(env, "HEALTH_BREAKER_WINDOW_SECONDS", 300, 1, day),
        "health_breaker_cooldown_seconds": _int(env, "HEALTH_BREAKER_COOLDOWN_SECONDS", 30, 1, day),
        "health_breaker_cooldown_max_seconds": _int(
            env, "HEALTH_BREAKER_COOLDOWN_MAX_SECONDS", 600, 1, day
        ),
        "health_failing_after": _int(env, "HEALTH_FAILING_AFTER", 5, 1, 10_000),
        "health_disable_after_seconds": _int(
            env, "HEALTH_DISABLE_AFTER_SECONDS", 5 * day, 1, 365 * day
        ),
        "health_disable_min_attempts": _int(env, "HEALTH_DISABLE_MIN_ATTEMPTS", 10, 1, 1_000_000),
        "health_throttle_min_seconds": _int(env, "HEALTH_THROTTLE_MIN_SECONDS", 1, 1, 3600),
        "health_throttle_max_seconds": _int(env, "HEALTH_THROTTLE_MAX_SECONDS", 60, 1, day),
        "health_exhausted_notice_seconds": _int(
            env, "HEALTH_EXHAUSTED_NOTICE_SECONDS", 3600, 1, day
        ),
        "health_certificate_warning_days": _int(env, "HEALTH_CERTIFICATE_WARNING_DAYS", 30, 1, 365),
        "health_certificate_check_seconds": _int(
            env, "HEALTH_CERTIFICATE_CHECK_SECONDS", 3600, 1, day
        ),
    }


def _console(env: Mapping[str, str]) -> dict[str, Any]:
    """The admin console."""
    return {
        "console_session_keys": _list(env, "CONSOLE_SESSION_KEYS"),
        "console_session_seconds": _int(env, "CONSOLE_SESSION_MINUTES", 480, 5, 7 * 1440) * 60,
        "console_proxy_hops": _int(env, "CONSOLE_PROXY_HOPS", 0, 0, 5),
        "console_signin_per_minute": _int(env, "CONSOLE_SIGNIN_PER_MINUTE", 10, 1, 10_000),
    }


def _nats(env: Mapping[str, str]) -> dict[str, Any]:
    """The NATS server, its authentication (nkey seed or .creds file) and TLS."""
    return {
        "nats_url": env.get(PREFIX + "NATS_URL") or None,
        "nats_nkey_seed_file": _path(env, "NATS_NKEY_SEED_FILE"),
        "nats_credentials": _path(env, "NATS_CREDENTIALS"),
        "nats_tls_ca": _path(env, "NATS_TLS_CA"),
        "nats_tls_cert": _path(env, "NATS_TLS_CERT"),
        "nats_tls_key": _path(env, "NATS_TLS_KEY"),
    }
