"""The sender's view of every subscription and certificate: a projection of SUBSCRIPTIONS.

Jobs carry the payload but not how to deliver it: the URL, the authentication, the SOAP
settings and the client certificate are read here at the time of each attempt, so a
change made through the subscriptions API applies to the next attempt. States are kept
as they are on the stream (secrets sealed); ``Endpoint`` opens them on use and is cached
per subscription version, so a secret is decrypted once per version, not per request.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from webhooks.v1 import common_pb2, messages_pb2
from webhooks_secrets import SecretBox, SecretUnreadable
from webhooks_sender.client_certificates import ClientCertificate

# Opened endpoints kept in memory; beyond this the least recently used are opened again.
OPENED_CACHE_SIZE = 10_000


class EndpointUnusable(Exception):
    """The subscription's settings cannot be used as they are (a missing certificate, a
    secret no configured key opens); the message says which, without any secret."""


@dataclass(frozen=True)
class Endpoint:
    """What one attempt needs of a subscription, secrets opened."""

    subscription: messages_pb2.SubscriptionState
    authentication: common_pb2.Authentication  # plaintext secrets
    signing_secrets: tuple[str, ...]  # current first, then a still valid previous one
    client_certificate: ClientCertificate | None
    origin: str  # scheme://host:port: the unit of the per-endpoint concurrency limit

    @property
    def key(self) -> str:
        return f"{self.subscription.id}:{self.subscription.version}"


class Directory:
    """Latest state of every subscription and certificate, by id (implements the feed's
    ``Projection``)."""

    def __init__(self, box: SecretBox) -> None:
        self._box = box
        self._subscriptions: dict[str, messages_pb2.SubscriptionState] = {}
        self._certificates: dict[str, messages_pb2.CertificateState] = {}
        self._opened: OrderedDict[tuple[str, int, int], Endpoint] = OrderedDict()
        self.applied_seq = 0

    def __len__(self) -> int:
        return len(self._subscriptions)

    def advance(self, stream_seq: int) -> None:
        self.applied_seq = max(self.applied_seq, stream_seq)

    def apply(self, state: messages_pb2.SubscriptionState, stream_seq: int) -> None:
        known = self._subscriptions.get(state.id)
        if known is None or state.version >= known.version:
            self._subscriptions[state.id] = state
        self.advance(stream_seq)

    def apply_certificate(self, state: messages_pb2.CertificateState, stream_seq: int) -> None:
        known = self._certificates.get(state.id)
        if known is None or state.version >= known.version:
            self._certificates[state.id] = state
        self.advance(stream_seq)

    def subscription(self, subscription_id: str) -> messages_pb2.SubscriptionState | None:
        return self._subscriptions.get(subscription_id)

    def endpoint(self, state: messages_pb2.SubscriptionState) -> Endpoint:
        """The subscription's settings with its secrets opened; raises EndpointUnusable."""
        certificate_id = state.webhook.client_certificate_id
        certificate = self._certificates.get(certificate_id) if certificate_id else None
        # A re-uploaded certificate changes its version, not the subscription's.
        cache_key = (state.id, state.version, certificate.version if certificate else 0)
        opened = self._opened.get(cache_key)
        if opened is not None:
            self._opened.move_to_end(cache_key)
            return opened
        opened = self._open(state, certificate)
        self._opened[cache_key] = opened
        if len(self._opened) > OPENED_CACHE_SIZE:
            self._opened.popitem(last=False)
        return opened

    def _open(
        self,
        state: messages_pb2.SubscriptionState,
        certificate: messages_pb2.CertificateState | None,
    ) -> Endpoint:
        client_certificate = None
        certificate_id = state.webhook.client_certificate_id
        if certificate_id:
            if certificate is None or certificate.deleted:
                raise EndpointUnusable(f"client certificate {certificate_id} does not exist")
            client_certificate = ClientCertificate(
                cache_key=f"{certificate.id}:{certificate.version}",
                certificate_pem=certificate.certificate_pem,
                private_key_pem=self._unseal(
                    certificate.private_key, f"certificate {certificate_id} private key"
                ),
            )
        secrets = []
        if state.signing_secret:
            secrets.append(self._unseal(state.signing_secret, "signing secret"))
        if state.previous_signing_secret and state.HasField("previous_valid_until"):
            until = state.previous_valid_until.ToDatetime(tzinfo=UTC)
            if until > datetime.now(UTC):
                secrets.append(self._unseal(state.previous_signing_secret, "signing secret"))
        split = urlsplit(state.webhook.url)
        port = split.port or (443 if split.scheme == "https" else 80)
        return Endpoint(
            subscription=state,
            authentication=self._open_authentication(state.authentication),
            signing_secrets=tuple(secrets),
            client_certificate=client_certificate,
            origin=f"{split.scheme}://{split.hostname}:{port}",
        )

    def _open_authentication(self, sealed: common_pb2.Authentication) -> common_pb2.Authentication:
        opened = common_pb2.Authentication()
        opened.CopyFrom(sealed)
        kind = opened.WhichOneof("kind")
        if kind == "basic":
            opened.basic.password = self._unseal(opened.basic.password, "basic password")
        elif kind == "oauth2_access_token":
            token = opened.oauth2_access_token
            token.access_token = self._unseal(token.access_token, "access token")
        elif kind == "oauth2_client_credentials":
            grant = opened.oauth2_client_credentials
            grant.client_secret = self._unseal(grant.client_secret, "client secret")
        elif kind == "oauth2_password":
            password_grant = opened.oauth2_password
            password_grant.client_secret = self._unseal(
                password_grant.client_secret, "client secret"
            )
            password_grant.password = self._unseal(password_grant.password, "password")
        return opened

    def _unseal(self, sealed: str, what: str) -> str:
        if not sealed:
            return ""
        try:
            return self._box.open(sealed)
        except SecretUnreadable:
            # The key that sealed it is not configured here: say so, never what it was.
            raise EndpointUnusable(
                f"the {what} cannot be opened with the configured keys"
            ) from None
