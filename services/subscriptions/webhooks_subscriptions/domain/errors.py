"""Domain errors: small classes that only the gRPC layer maps to status codes."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a command can raise for a caller to see."""


class InvalidField(DomainError):
    """A value breaks a rule; ``field`` is its path in the request (``webhook.url``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class NameTaken(DomainError):
    def __init__(self, name: str) -> None:
        super().__init__(f"name: {name!r} is or was already used in this organisation")
        self.field = "name"


class NotFound(DomainError):
    def __init__(self, kind: str, ident: str) -> None:
        super().__init__(f"{kind} {ident} not found")


class StaleVersion(DomainError):
    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"expected_version: is {expected}, the subscription is at {actual}")
        self.field = "expected_version"


class CertificateInUse(DomainError):
    def __init__(self, certificate_id: str, subscription_names: list[str]) -> None:
        names = ", ".join(sorted(subscription_names)[:5])
        super().__init__(f"certificate {certificate_id} is used by: {names}")
