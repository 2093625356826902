"""Domain errors: small classes that only the gRPC layer maps to status codes, and
``collect``, which runs independent checks and reports every problem at once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


class DomainError(Exception):
    """Base of every error a command can raise for a caller to see."""


class InvalidField(DomainError):
    """A value breaks a rule; ``field`` is its path in the request (``webhook.url``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    @property
    def violations(self) -> tuple[InvalidField, ...]:
        """Every bad value this error reports, in the order of the request."""
        return (self,)


class InvalidFields(InvalidField):
    """Several values break their rules, each on its own; ``field`` and ``message`` are
    the first's, so whoever reads one problem reads the first."""

    def __init__(self, violations: Sequence[InvalidField]) -> None:
        flat = tuple(one for violation in violations for one in violation.violations)
        if not flat:
            raise ValueError("InvalidFields needs at least one violation")
        super().__init__(flat[0].field, flat[0].message)
        self._violations = flat

    @property
    def violations(self) -> tuple[InvalidField, ...]:
        return self._violations


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


def collect(*checks: Callable[[], Any]) -> list[Any]:
    """The results of independent checks, in order; or, when any fail, every problem at
    once: InvalidFields in the checks' order (the InvalidField itself when only one)."""
    results: list[Any] = []
    problems: list[InvalidField] = []
    for check in checks:
        try:
            results.append(check())
        except InvalidField as problem:
            problems.append(problem)
    raise_all(problems)
    return results


def raise_all(problems: Sequence[InvalidField]) -> None:
    """Report every problem, if there are any: the one itself, or InvalidFields."""
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise InvalidFields(problems)


def valid_or_none(check: Callable[[], T]) -> T | None:
    """The check's result, or None when it fails (its problem is reported elsewhere)."""
    try:
        return check()
    except InvalidField:
        return None
