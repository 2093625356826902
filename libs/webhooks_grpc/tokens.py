"""The configured bearer tokens: loading them and finding a token's owner.

Only sha256 digests of the tokens are kept in memory, and a lookup compares against every
configured digest in constant time, so timing says nothing about which token nearly matched.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from webhooks_config import ConfigError, Settings
from webhooks_messaging import is_valid_tenant

PLATFORM_TENANT = "*"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TokenEntry:
    name: str
    tenant: str  # PLATFORM_TENANT: a platform token, valid for every tenant
    digest: bytes


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class TokenTable:
    """Token digests and who owns each one."""

    def __init__(self, entries: list[TokenEntry]) -> None:
        self._entries = tuple(entries)

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, token: str) -> TokenEntry | None:
        digest = _digest(token)
        found: TokenEntry | None = None
        for entry in self._entries:  # no early exit: constant time over the table
            if hmac.compare_digest(entry.digest, digest) and found is None:
                found = entry
        return found

    @classmethod
    def from_json(cls, text: str, source: str) -> TokenTable:
        """Parse ``[{"name": …, "token": …, "tenant": …}, …]``; errors name ``source``."""
        try:
            raw = json.loads(text) if text.strip() else []
        except json.JSONDecodeError as err:
            # The position only: the error text could quote a token.
            raise ConfigError(f"{source}: not valid JSON (line {err.lineno})") from None
        if not isinstance(raw, list):
            raise ConfigError(f"{source}: expected a JSON list of tokens")
        entries = []
        for index, item in enumerate(raw):
            where = f"{source}[{index}]"
            if not isinstance(item, dict):
                raise ConfigError(f"{where}: expected an object with name, token, tenant")
            name, token, tenant = item.get("name"), item.get("token"), item.get("tenant")
            if not isinstance(name, str) or not name:
                raise ConfigError(f"{where}.name: required")
            if not isinstance(token, str) or not token:
                raise ConfigError(f"{where}.token: required")
            if not isinstance(tenant, str) or not (
                tenant == PLATFORM_TENANT or is_valid_tenant(tenant)
            ):
                raise ConfigError(f'{where}.tenant: a tenant id or "*"')
            entries.append(TokenEntry(name=name, tenant=tenant, digest=_digest(token)))
        return cls(entries)


def _read(path: Path, source: str) -> TokenTable:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{source}: cannot read {path}: {err.strerror}") from None
    return TokenTable.from_json(text, source)


def load_tokens(settings: Settings) -> TokenTable:
    """The tokens from WEBHOOKS_TOKENS, else WEBHOOKS_TOKENS_FILE, else the data dir's file."""
    if settings.tokens_json is not None:
        table = TokenTable.from_json(settings.tokens_json, "WEBHOOKS_TOKENS")
    elif settings.tokens_file is not None:
        table = _read(settings.tokens_file, "WEBHOOKS_TOKENS_FILE")
    elif settings.default_tokens_file.exists():
        table = _read(settings.default_tokens_file, str(settings.default_tokens_file))
    else:
        table = TokenTable([])
    if not len(table):
        log.warning("no API tokens configured: every RPC will be refused as UNAUTHENTICATED")
    return table
