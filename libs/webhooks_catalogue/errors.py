"""The one error the catalogue raises."""

from __future__ import annotations


class CatalogueError(ValueError):
    """A subscription does not fit the catalogue; ``field`` is the path of the value."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
