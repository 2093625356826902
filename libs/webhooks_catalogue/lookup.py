"""Looking things up in the catalogue: entities and triggers by name, enumeration values
by id or name (what the CLI and UIs need to turn user input into ids and back)."""

from __future__ import annotations

from collections.abc import Mapping

from webhooks_catalogue.data import (
    ACTIVITY_TYPES,
    ANY_STATUS,
    CHANNELS,
    ENTITIES,
    OBJECT_STATUSES,
    TAG_TYPES,
    WHATSAPP_STATUSES,
    Entity,
    Trigger,
)
from webhooks_catalogue.keys import catalogue_key


def entity_names() -> tuple[str, ...]:
    return tuple(e.name for e in ENTITIES)


def entity(name: str) -> Entity | None:
    """The entity called ``name`` (its id or display name, any case), or None."""
    wanted = catalogue_key(name)
    return next((e for e in ENTITIES if catalogue_key(e.name) == wanted), None)


def trigger(entity_name: str, name: str) -> Trigger | None:
    """The trigger ``name`` of entity ``entity_name`` (both case-insensitive), or None."""
    found = entity(entity_name)
    return found.trigger(name.strip()) if found else None


def _name(values: Mapping[int, str], kind: str, value_id: int) -> str:
    try:
        return values[value_id]
    except KeyError:
        raise ValueError(f"unknown {kind} id {value_id}") from None


def channel_name(channel_id: int) -> str:
    return _name(CHANNELS, "channel", channel_id)


def activity_type_name(activity_type_id: int) -> str:
    return _name(ACTIVITY_TYPES, "activity type", activity_type_id)


def object_status_name(status_id: int) -> str:
    return _name(OBJECT_STATUSES, "object status", status_id)


def tag_type_name(tag_type_id: int) -> str:
    return _name(TAG_TYPES, "tag type", tag_type_id)


def _parse(values: Mapping[int, str], kind: str, text: str | int) -> int:
    # bool is an int to Python but never a meaningful id.
    if isinstance(text, int) and not isinstance(text, bool):
        if text in values:
            return text
        raise ValueError(f"unknown {kind} id {text}; {_expected(values)}")
    given = str(text).strip()
    if given.lstrip("-").isdigit():
        return _parse(values, kind, int(given))
    wanted = catalogue_key(given)
    for value_id, value_name in values.items():
        if catalogue_key(value_name) == wanted:
            return value_id
    raise ValueError(f"unknown {kind} {given!r}; {_expected(values)}")


def _expected(values: Mapping[int, str]) -> str:
    return "expected an id or name: " + ", ".join(f"{i} {n}" for i, n in values.items())


def parse_channel(text: str | int) -> int:
    """A channel id from its id or name (case-insensitive): ``"WhatsApp"`` or ``"7"`` -> 7."""
    return _parse(CHANNELS, "channel", text)


def parse_activity_type(text: str | int) -> int:
    return _parse(ACTIVITY_TYPES, "activity type", text)


def parse_object_status(text: str | int) -> int:
    return _parse(OBJECT_STATUSES, "object status", text)


def parse_tag_type(text: str | int) -> int:
    return _parse(TAG_TYPES, "tag type", text)


def parse_whatsapp_status(text: str) -> str:
    wanted = catalogue_key(text)
    if wanted in WHATSAPP_STATUSES:
        return wanted
    raise ValueError(f"unknown WhatsApp status {text!r}; expected {', '.join(WHATSAPP_STATUSES)}")


def parse_status_change(text: str) -> dict[str, int]:
    """``"Open->Resolved"``, ``"1->2"``, ``"any->Resolved"`` or ``"Resolved"`` (from any)
    as ``{"from": int, "to": int}``; from 0 means any status."""
    source, arrow, target = text.partition("->")
    if not arrow:
        source, target = "", text
    source = source.strip()
    from_id = ANY_STATUS if source.casefold() in ("", "any", "*", "0") else None
    if from_id is None:
        from_id = parse_object_status(source)
    return {"from": from_id, "to": parse_object_status(target)}
