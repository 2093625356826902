"""Secrets at rest: sealing and opening credentials with rotatable keys.

A sealed value is ``sealed:v1:<Fernet token>``: AES-128-CBC with HMAC-SHA256 (the
``cryptography`` library's Fernet). Keys come from configuration (``WEBHOOKS_SECRET_KEYS``,
comma-separated, the first one seals, all of them open, so a key is rotated by putting a
new one first); without configuration, a key file in the data directory is created once,
which is what ``webhooks up`` uses.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from webhooks_config import ConfigError, Settings
from webhooks_storage.private import make_private

SEALED_PREFIX = "sealed:v1:"


class SecretUnreadable(Exception):
    """A sealed value that none of the configured keys opens."""


def is_sealed(value: str) -> bool:
    return value.startswith(SEALED_PREFIX)


class SecretBox:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ConfigError("WEBHOOKS_SECRET_KEYS: at least one key is needed")
        try:
            self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])
        except ValueError:
            raise ConfigError(
                "WEBHOOKS_SECRET_KEYS: each key must be 32 url-safe base64-encoded bytes "
                "(make one with `webhooks secret-key`)"
            ) from None

    def seal(self, plaintext: str) -> str:
        return SEALED_PREFIX + self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, sealed: str) -> str:
        if not is_sealed(sealed):
            raise SecretUnreadable("not a sealed value")
        try:
            return self._fernet.decrypt(sealed[len(SEALED_PREFIX) :].encode()).decode()
        except InvalidToken:
            raise SecretUnreadable("no configured key opens this value") from None

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        if settings.secret_keys:
            return cls(list(settings.secret_keys))
        return cls(ensure_key_file(settings.secret_keys_file))


def new_key() -> str:
    return Fernet.generate_key().decode()


def ensure_key_file(path: Path) -> list[str]:
    """The keys in ``path``, creating it with one new key (mode 0600) when absent."""
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first: read theirs
        else:
            with os.fdopen(fd, "w") as out:
                out.write(new_key() + "\n")
    else:
        make_private(path)  # one an older version left readable by others
    keys = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not keys:
        raise ConfigError(f"{path}: holds no key")
    return keys


# Where a secret hides in plain sight: user info and query strings of webhook URLs (a
# token in ?key=...). Every URL the platform shows (records, spans, operator events) is this.
def shown_url(url: str) -> str:
    """The URL without user info, query or fragment: those may carry credentials."""
    split = urlsplit(url)
    host = split.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if split.port is not None:
        host = f"{host}:{split.port}"
    return urlunsplit((split.scheme, host, split.path, "", ""))
