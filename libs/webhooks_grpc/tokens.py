"""The configured bearer tokens: their file format, loading them and finding a token's owner.

A tokens file (and ``WEBHOOKS_TOKENS``) is a JSON list of
``{"name": …, "token_sha256": <hex>, "tenant": …}``: only the SHA-256 digest of each token
is stored, so reading the file gives no token away. Entries with the token itself
(``"token": …``, the format before digests) still work, with one warning naming how to
convert them (``webhooks tokens convert``).

A single fast hash, not a slow password hash (bcrypt, scrypt), is right here: every token is
32 random bytes (``new_token``), so there is nothing to guess from a digest (2^256 tries)
that key stretching would slow down, and a slow hash would cost every RPC its time.

Only digests are kept in memory, and a lookup compares against every configured digest in
constant time, so timing says nothing about which token nearly matched.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from webhooks_config import ConfigError, Settings
from webhooks_messaging import is_valid_tenant

PLATFORM_TENANT = "*"
DIGEST_FIELD = "token_sha256"
TOKEN_BYTES = 32  # 256 random bits: what makes a fast hash sufficient (module docstring)
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TokenEntry:
    name: str
    tenant: str  # PLATFORM_TENANT: a platform token, valid for every tenant
    digest: bytes
    plaintext: bool = False  # given as the token itself: to be converted to its digest

    def stored(self) -> dict[str, str]:
        """The entry as a tokens file keeps it: the digest, never the token."""
        return {"name": self.name, DIGEST_FIELD: self.digest.hex(), "tenant": self.tenant}


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def is_valid_token_tenant(tenant: str) -> bool:
    return tenant == PLATFORM_TENANT or is_valid_tenant(tenant)


class TokenTable:
    """Token digests and who owns each one."""

    def __init__(self, entries: list[TokenEntry]) -> None:
        self._entries = tuple(entries)

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, token: str) -> TokenEntry | None:
        digest = token_digest(token)
        found: TokenEntry | None = None
        for entry in self._entries:  # no early exit: constant time over the table
            if hmac.compare_digest(entry.digest, digest) and found is None:
                found = entry
        return found

    @property
    def entries(self) -> tuple[TokenEntry, ...]:
        return self._entries

    @property
    def plaintext(self) -> int:
        """How many entries were given as the token itself rather than its digest."""
        return sum(entry.plaintext for entry in self._entries)

    @classmethod
    def from_json(cls, text: str, source: str) -> TokenTable:
        """Parse ``[{"name", "token_sha256" (or "token"), "tenant"}, …]``; errors name
        ``source`` and never quote a token."""
        try:
            raw = json.loads(text) if text.strip() else []
        except json.JSONDecodeError as err:
            # The position only: the error text could quote a token.
            raise ConfigError(f"{source}: not valid JSON (line {err.lineno})") from None
        if not isinstance(raw, list):
            raise ConfigError(f"{source}: expected a JSON list of tokens")
        return cls([_entry(item, f"{source}[{index}]") for index, item in enumerate(raw)])


def _entry(item: object, where: str) -> TokenEntry:
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: expected an object with name, {DIGEST_FIELD}, tenant")
    name, tenant = item.get("name"), item.get("tenant")
    token, digest = item.get("token"), item.get(DIGEST_FIELD)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}.name: required")
    if not isinstance(tenant, str) or not is_valid_token_tenant(tenant):
        raise ConfigError(f'{where}.tenant: a tenant id or "*"')
    if token is not None and digest is not None:
        raise ConfigError(f"{where}: give {DIGEST_FIELD} or token, not both")
    if digest is not None:
        if not isinstance(digest, str) or not _HEX_DIGEST.fullmatch(digest):
            raise ConfigError(f"{where}.{DIGEST_FIELD}: 64 lowercase hex digits (a SHA-256)")
        return TokenEntry(name=name, tenant=tenant, digest=bytes.fromhex(digest))
    if not isinstance(token, str) or not token:
        raise ConfigError(f"{where}.{DIGEST_FIELD}: required")
    return TokenEntry(name=name, tenant=tenant, digest=token_digest(token), plaintext=True)


def tokens_json(entries: Sequence[TokenEntry]) -> str:
    """A tokens file's text: every entry as its digest."""
    return json.dumps([entry.stored() for entry in entries], indent=2) + "\n"


def write_tokens_file(path: Path, entries: Sequence[TokenEntry]) -> None:
    """Replace ``path`` with ``entries`` as digests, atomically, mode 0600: a reader sees
    the old file or the new one, never half of one."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(tokens_json(entries))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_tokens_file(path: Path, source: str, *, missing_ok: bool = False) -> TokenTable:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if missing_ok:
            return TokenTable([])
        raise ConfigError(f"{source}: cannot read {path}: no such file") from None
    except OSError as err:
        raise ConfigError(f"{source}: cannot read {path}: {err.strerror}") from None
    return TokenTable.from_json(text, source)


def load_tokens(settings: Settings) -> TokenTable:
    """The tokens from WEBHOOKS_TOKENS, else WEBHOOKS_TOKENS_FILE, else the data dir's file."""
    if settings.tokens_json is not None:
        table = TokenTable.from_json(settings.tokens_json, "WEBHOOKS_TOKENS")
    elif settings.tokens_file is not None:
        table = read_tokens_file(settings.tokens_file, "WEBHOOKS_TOKENS_FILE")
    elif settings.default_tokens_file.exists():
        table = read_tokens_file(settings.default_tokens_file, str(settings.default_tokens_file))
    else:
        table = TokenTable([])
    if not len(table):
        log.warning("no API tokens configured: every RPC will be refused as UNAUTHENTICATED")
    if table.plaintext:
        log.warning(
            "%d API token(s) stored in plaintext in %s: run `webhooks tokens convert` to "
            "keep only their SHA-256 digests",
            table.plaintext,
            tokens_source(settings)[1],
        )
    return table


def tokens_source(settings: Settings) -> tuple[Path | None, str]:
    """Where the tokens come from: (the file, or None for WEBHOOKS_TOKENS; its name)."""
    if settings.tokens_json is not None:
        return None, "WEBHOOKS_TOKENS"
    if settings.tokens_file is not None:
        return settings.tokens_file, "WEBHOOKS_TOKENS_FILE"
    return settings.default_tokens_file, str(settings.default_tokens_file)
