"""How the console shows what the CLI writes as syntax: a trigger as its name in words with
its components as short labelled lists, a URL that wraps only after its slashes, and the
back-stack of page tokens that gives keyset paging a "Previous" link."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from webhooks.v1.common_pb2 import Catalogue, TriggerSpec
from webhooks_catalogue.vocabulary import words

# The labels of the Add New Subscription form's components, shortened for a list cell.
COMPONENT_LABELS = {
    "channels": "Channels",
    "activity_types": "Activity types",
    "status_changes": "Status",
    "whatsapp_channels": "WhatsApp channels",
    "whatsapp_statuses": "WhatsApp statuses",
}
ANY_STATUS_TEXT = "Any"
# Page tokens kept for "Previous": each is ~100 characters, so the URL stays short; deeper
# than this, "Previous" ends where the kept tokens end and "First page" still works.
MAX_BACK_PAGES = 20


@dataclass(frozen=True)
class TriggerText:
    """One trigger of a subscription, for a person."""

    name: str  # "On New Activity"
    code: str  # "OnNewActivity": the catalogue's name, as the CLI and the API write it
    fires_when: str  # the catalogue's explanation, "" when the trigger is unknown
    parts: tuple[tuple[str, str], ...]  # (label, values): only the components chosen

    @property
    def title(self) -> str:
        return f"{self.code}: fires when {self.fires_when}" if self.fires_when else self.code

    @property
    def text(self) -> str:
        """The whole line as plain text (what a test or a screen reader gets)."""
        listed = " · ".join(f"{label}: {values}" for label, values in self.parts)
        return f"{self.name} — {listed}" if listed else self.name


def _names(values: Sequence[object], table: Mapping[int, str]) -> str:
    return ", ".join(table.get(v, str(v)) if isinstance(v, int) else str(v) for v in values)


def trigger_text(trigger: TriggerSpec, entity: str, catalogue: Catalogue) -> TriggerText:
    """``trigger`` in words: the name from the catalogue's entity (or the name as stored
    when the catalogue does not know it), each chosen component as "Label: a, b"."""
    channels = {v.id: v.name for v in catalogue.channels}
    activity_types = {v.id: v.name for v in catalogue.activity_types}
    statuses = {v.id: v.name for v in catalogue.object_statuses}
    found = next(
        (
            t
            for e in catalogue.entities
            if e.name == entity
            for t in e.triggers
            if t.name.casefold() == trigger.trigger.casefold()
        ),
        None,
    )
    code = found.name if found is not None else trigger.trigger
    parts: list[tuple[str, str]] = []
    if trigger.channels:
        parts.append((COMPONENT_LABELS["channels"], _names(trigger.channels, channels)))
    if trigger.activity_types:
        names = _names(trigger.activity_types, activity_types)
        parts.append((COMPONENT_LABELS["activity_types"], names))
    if trigger.status_changes:

        def status(value: int) -> str:
            return statuses.get(value, str(value)) if value else ANY_STATUS_TEXT

        changes = ", ".join(
            f"{status(c.from_status)} → {status(c.to_status)}" for c in trigger.status_changes
        )
        parts.append((COMPONENT_LABELS["status_changes"], changes))
    if trigger.whatsapp_channels:
        parts.append((COMPONENT_LABELS["whatsapp_channels"], ", ".join(trigger.whatsapp_channels)))
    if trigger.whatsapp_statuses:
        parts.append((COMPONENT_LABELS["whatsapp_statuses"], ", ".join(trigger.whatsapp_statuses)))
    return TriggerText(
        name=words(code),
        code=code,
        fires_when=found.fires_when if found is not None else "",
        parts=tuple(parts),
    )


def trigger_name(name: str, entity: str, catalogue: Catalogue) -> str:
    """Just the name in words (the Failed Events view's Trigger column)."""
    return trigger_text(TriggerSpec(trigger=name), entity, catalogue).name


_BREAK_AFTER = re.compile(r"(/+|[?&=])")


def url_breaks(url: str) -> Markup:
    """``url`` escaped, with a line-break opportunity after each run of slashes and after
    ``?``, ``&`` and ``=``: a narrow column wraps it between its parts, never inside a
    host name or a path segment."""
    pieces = _BREAK_AFTER.split(url)  # text, separator, text, separator, ..., text
    return Markup("").join(
        Markup("{}<wbr>").format(piece) if index % 2 else escape(piece)
        for index, piece in enumerate(pieces)
        if piece
    )


@dataclass(frozen=True)
class Pages:
    """Keyset paging both ways: the tokens of the pages before this one travel in the
    query string (``back``), so "Previous" needs no request of its own."""

    token: str  # this page's token; "" on the first page
    back: tuple[str, ...]  # the tokens of the pages before, oldest first ("" = first)
    next_token: str  # from the reply; "" on the last page

    @classmethod
    def of(cls, token: str, back: Sequence[str], next_token: str) -> Pages:
        kept = tuple(back[-MAX_BACK_PAGES:]) if token else ()
        return cls(token, kept, next_token)

    @property
    def first(self) -> bool:
        return not self.token

    def next_args(self, **keep: object) -> dict[str, object] | None:
        """The query of the next page (with ``keep``: the search or filters), or None."""
        if not self.next_token:
            return None
        back = [*self.back, self.token][-MAX_BACK_PAGES:]
        return {**keep, "page": self.next_token, "back": back}

    def previous_args(self, **keep: object) -> dict[str, object] | None:
        """The query of the page before; None on the first page, and when the kept tokens
        have run out (deep paging: "First page" still works)."""
        if self.first or not self.back:
            return None
        token, back = self.back[-1], list(self.back[:-1])
        return {**keep, "page": token or None, "back": back if token else []}
