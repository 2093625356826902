"""How the console shows what the CLI writes as syntax: a trigger as its name in words with
its components as short labelled lists (every value by its display name), a time as a
``<time>`` element the page's script shows in the viewer's local time, a URL that wraps
only after its slashes, and the back-stack of page tokens that gives keyset paging a
"Previous" link."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from google.protobuf.timestamp_pb2 import Timestamp
from markupsafe import Markup, escape

from webhooks.v1.common_pb2 import Catalogue, TriggerSpec
from webhooks_catalogue.keys import catalogue_key
from webhooks_catalogue.vocabulary import (
    activity_type_label,
    channel_label,
    object_status_label,
    trigger_label,
    whatsapp_status_label,
)
from webhooks_catalogue.vocabulary import words as words  # re-exported: the pages' filter
from webhooks_console.times import local_time

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
        return f"{self.name}: fires when {self.fires_when}" if self.fires_when else self.name

    @property
    def text(self) -> str:
        """The whole line as plain text (what a test or a screen reader gets)."""
        listed = " · ".join(f"{label}: {values}" for label, values in self.parts)
        return f"{self.name} — {listed}" if listed else self.name


def _labels(values: Sequence[int], label: Callable[[int], str]) -> str:
    return ", ".join(label(v) for v in values)


def _status(value: int) -> str:
    return object_status_label(value) if value else ANY_STATUS_TEXT


def trigger_parts(trigger: TriggerSpec) -> tuple[tuple[str, str], ...]:
    """Each chosen component as (label, values in words): "Channels", "WhatsApp, Web"."""
    parts: list[tuple[str, str]] = []
    if trigger.channels:
        parts.append((COMPONENT_LABELS["channels"], _labels(trigger.channels, channel_label)))
    if trigger.activity_types:
        names = _labels(trigger.activity_types, activity_type_label)
        parts.append((COMPONENT_LABELS["activity_types"], names))
    if trigger.status_changes:
        changes = ", ".join(
            f"{_status(c.from_status)} → {_status(c.to_status)}" for c in trigger.status_changes
        )
        parts.append((COMPONENT_LABELS["status_changes"], changes))
    if trigger.whatsapp_channels:
        parts.append((COMPONENT_LABELS["whatsapp_channels"], ", ".join(trigger.whatsapp_channels)))
    if trigger.whatsapp_statuses:
        statuses = ", ".join(whatsapp_status_label(s) for s in trigger.whatsapp_statuses)
        parts.append((COMPONENT_LABELS["whatsapp_statuses"], statuses))
    return tuple(parts)


def trigger_text(trigger: TriggerSpec, entity: str, catalogue: Catalogue) -> TriggerText:
    """``trigger`` in words: the name from the catalogue's entity (or the name as stored
    when the catalogue does not know it), each chosen component as "Label: a, b", every
    value by its display name (``webhooks_catalogue.vocabulary``)."""
    wanted = catalogue_key(trigger.trigger)
    found = next(
        (
            t
            for e in catalogue.entities
            if catalogue_key(e.name) == catalogue_key(entity)
            for t in e.triggers
            if catalogue_key(t.name) == wanted
        ),
        None,
    )
    code = found.name if found is not None else trigger.trigger
    return TriggerText(
        name=trigger_label(code),
        code=code,
        fires_when=found.fires_when if found is not None else "",
        parts=trigger_parts(trigger),
    )


def trigger_name(name: str, entity: str, catalogue: Catalogue) -> str:
    """Just the name in words (the Failed Events view's Trigger column)."""
    return trigger_text(TriggerSpec(trigger=name), entity, catalogue).name


def time_html(ts: Timestamp, empty: str = "—") -> Markup:
    """``ts`` as ``times.local_time`` writes it (a ``<time class="local">`` the script
    shows in the viewer's local time), ``empty`` when unset."""
    return local_time(ts) or Markup("{}").format(empty)


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
