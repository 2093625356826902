"""The ClientCertificate aggregate: a tenant's certificate and sealed private key for mTLS."""

from __future__ import annotations

from datetime import datetime

from eventsourcing.domain import Aggregate, event


class ClientCertificate(Aggregate):
    @event("Uploaded")
    def __init__(
        self,
        tenant: str,
        name: str,
        certificate_pem: str,
        private_key: str,  # sealed
        subject: str,
        issuer: str,
        not_before: datetime,
        not_after: datetime,
        fingerprint_sha256: str,
        actor: str,
        trace: dict[str, str],
    ) -> None:
        self.tenant = tenant
        self.name = name
        self.certificate_pem = certificate_pem
        self.private_key = private_key
        self.subject = subject
        self.issuer = issuer
        self.not_before = not_before
        self.not_after = not_after
        self.fingerprint_sha256 = fingerprint_sha256
        self.deleted = False

    def delete(self, actor: str, trace: dict[str, str]) -> None:
        if not self.deleted:
            self._deleted(actor=actor, trace=trace)

    @event("Deleted")
    def _deleted(self, actor: str, trace: dict[str, str]) -> None:
        self.deleted = True

    def expired(self, now: datetime) -> bool:
        return now >= self.not_after
