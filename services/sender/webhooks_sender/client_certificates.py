"""TLS contexts of outbound requests: the verifying one (system CAs, or a CA bundle
instead) and, for mTLS, one per tenant client certificate, built once and cached.

``ssl`` loads keys only from files. The key is written re-encrypted under a random
one-time password, in a directory only this process's user can read, and deleted as soon
as it is loaded: plaintext never touches the disk.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import ssl
import tempfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization

__all__ = [
    "CLIENT_CONTEXT_CACHE_SIZE",
    "ClientCertificate",
    "ClientContexts",
    "UnusableCertificate",
]

CLIENT_CONTEXT_CACHE_SIZE = 1024


@dataclass(frozen=True)
class ClientCertificate:
    """A tenant's client certificate for mTLS; the key stays in memory in plaintext only.

    ``cache_key`` names this certificate and key (e.g. certificate id and version): the
    SSLContext built from them is reused for every request that gives the same key.
    """

    cache_key: str
    certificate_pem: str
    private_key_pem: str

    def __repr__(self) -> str:  # never print the key
        return f"ClientCertificate(cache_key={self.cache_key!r})"


class UnusableCertificate(Exception):
    """A client certificate or key that cannot be loaded (a configuration failure)."""


def verifying_context(ca_bundle: Path | None) -> ssl.SSLContext:
    if ca_bundle is not None:
        return ssl.create_default_context(cafile=str(ca_bundle))
    return ssl.create_default_context()


class ClientContexts:
    """The verifying contexts that present client certificates, least recently used
    dropped past ``size``."""

    def __init__(self, ca_bundle: Path | None, size: int = CLIENT_CONTEXT_CACHE_SIZE) -> None:
        self.ca_bundle = ca_bundle
        self.size = size
        self._contexts: OrderedDict[str, ssl.SSLContext] = OrderedDict()

    async def context_for(self, certificate: ClientCertificate) -> ssl.SSLContext:
        context = self._contexts.get(certificate.cache_key)
        if context is None:
            # Key encryption and loading take milliseconds: not on the event loop. Two
            # concurrent first uses may both build; the second result simply wins.
            context = await asyncio.to_thread(self._client_context, certificate)
            self._contexts[certificate.cache_key] = context
            while len(self._contexts) > self.size:
                self._contexts.popitem(last=False)
        else:
            self._contexts.move_to_end(certificate.cache_key)
        return context

    def _client_context(self, certificate: ClientCertificate) -> ssl.SSLContext:
        """A verifying context that presents ``certificate`` (raises
        ``UnusableCertificate``)."""
        context = verifying_context(self.ca_bundle)
        password = secrets.token_urlsafe(32).encode()
        try:
            key = serialization.load_pem_private_key(
                certificate.private_key_pem.encode(), password=None
            )
            encrypted = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(password),
            )
        except (ValueError, TypeError) as exc:
            raise UnusableCertificate(
                f"client certificate {certificate.cache_key}: unreadable private key"
            ) from exc
        directory = tempfile.mkdtemp(prefix="webhooks-mtls-")  # mode 0700
        try:
            cert_file = os.path.join(directory, "certificate.pem")
            key_file = os.path.join(directory, "key.pem")
            _write_private(cert_file, certificate.certificate_pem.encode())
            _write_private(key_file, encrypted)
            context.load_cert_chain(cert_file, key_file, password=password)
        except ssl.SSLError as exc:
            raise UnusableCertificate(
                f"client certificate {certificate.cache_key}: unusable ({exc.reason})"
            ) from exc
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return context


def _write_private(path: str, content: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(content)
