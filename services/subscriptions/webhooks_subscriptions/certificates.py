"""Reading uploaded client certificates (PEM) with the ``cryptography`` library."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from webhooks_catalogue import limits
from webhooks_subscriptions.domain.errors import InvalidField

MAX_PEM_BYTES = limits.PEM_BYTES


@dataclass(frozen=True)
class ParsedCertificate:
    certificate_pem: str
    private_key_pem: str
    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    fingerprint_sha256: str


def parse_certificate(certificate_pem: str, private_key_pem: str) -> ParsedCertificate:
    """Checks that the PEMs are one certificate and its (unencrypted) private key."""
    for field, pem in (("certificate_pem", certificate_pem), ("private_key_pem", private_key_pem)):
        size = len(pem.encode())
        if size > MAX_PEM_BYTES:
            raise InvalidField(field, f"must be at most {MAX_PEM_BYTES} bytes, got {size}")
        if not pem.strip():
            raise InvalidField(field, "required")
    try:
        cert = x509.load_pem_x509_certificate(certificate_pem.encode())
    except ValueError:
        raise InvalidField("certificate_pem", "not a PEM X.509 certificate") from None
    try:
        key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    except (ValueError, TypeError):
        raise InvalidField(
            "private_key_pem", "not an unencrypted PEM private key (PKCS#8 or traditional)"
        ) from None
    if not isinstance(
        key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    ) and not isinstance(key, ed448.Ed448PrivateKey):
        raise InvalidField("private_key_pem", "unsupported key type")
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(
        serialization.Encoding.DER, public
    ) != cert.public_key().public_bytes(serialization.Encoding.DER, public):
        raise InvalidField("private_key_pem", "does not belong to the certificate")
    der = cert.public_bytes(serialization.Encoding.DER)
    return ParsedCertificate(
        certificate_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        private_key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        fingerprint_sha256=hashlib.sha256(der).hexdigest(),
    )
