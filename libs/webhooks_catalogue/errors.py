"""The errors the catalogue raises: one bad value, or several found at once."""

from __future__ import annotations

from collections.abc import Sequence


class CatalogueError(ValueError):
    """A subscription does not fit the catalogue; ``field`` is the path of the value."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    @property
    def errors(self) -> tuple[CatalogueError, ...]:
        """Every problem this error reports, in the order of the request."""
        return (self,)


class CatalogueErrors(CatalogueError):
    """Several independent values do not fit; ``field`` and ``message`` are the first's."""

    def __init__(self, errors: Sequence[CatalogueError]) -> None:
        flat = tuple(one for error in errors for one in error.errors)
        if not flat:
            raise ValueError("CatalogueErrors needs at least one error")
        super().__init__(flat[0].field, flat[0].message)
        self._errors = flat

    @property
    def errors(self) -> tuple[CatalogueError, ...]:
        return self._errors
