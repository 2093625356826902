"""The ``--trigger`` SPEC syntax, both ways: text to ``TriggerSpec`` and back.

``TRIGGER[:component=value,value;component=value...]``, for example
``OnNewActivity:activity_types=StatusChange,Remark;channels=WhatsApp,7;status_changes=Open>Resolved,>Archive``.
Channels, activity types and statuses are catalogue names or ids (the catalogue's parse
helpers decide); a status change is ``FROM>TO`` or ``>TO`` (from any status; ``FROM->TO``
is read too). A component left out means "all".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from webhooks.v1.common_pb2 import Catalogue, StatusChange, TriggerSpec
from webhooks_catalogue import (
    parse_activity_type,
    parse_channel,
    parse_object_status,
    parse_whatsapp_status,
)

T = TypeVar("T")
COMPONENTS = (
    "channels",
    "activity_types",
    "status_changes",
    "whatsapp_channels",
    "whatsapp_statuses",
)


class TriggerSyntaxError(ValueError):
    """A SPEC that cannot be read; the message says which part and why."""


@dataclass(frozen=True)
class CatalogueNames:
    """Ids to names, so a trigger is shown the way people write it."""

    channels: Mapping[int, str] = field(default_factory=dict)
    activity_types: Mapping[int, str] = field(default_factory=dict)
    statuses: Mapping[int, str] = field(default_factory=dict)

    @classmethod
    def from_catalogue(cls, catalogue: Catalogue) -> CatalogueNames:
        return cls(
            channels={v.id: v.name for v in catalogue.channels},
            activity_types={v.id: v.name for v in catalogue.activity_types},
            statuses={v.id: v.name for v in catalogue.object_statuses},
        )


def _parsed(values: list[str], parse: Callable[[str], T]) -> list[T]:
    try:
        return [parse(value) for value in values]
    except ValueError as err:  # the catalogue's message names the value and the choices
        raise TriggerSyntaxError(str(err)) from None


def _status_change(text: str) -> StatusChange:
    # "->" is accepted too: it is how the catalogue writes a status change.
    source, arrow, target = text.replace("->", ">").rpartition(">")
    if not arrow:
        source, target = "", text  # just "TO": from any status
    if not target.strip():
        raise TriggerSyntaxError(f"status change {text!r} needs a target status: FROM>TO or >TO")
    source = source.strip()
    any_source = source.casefold() in ("", "any", "*", "0")
    from_status = 0 if any_source else _parsed([source], parse_object_status)[0]
    to_status = _parsed([target.strip()], parse_object_status)[0]
    return StatusChange(from_status=from_status, to_status=to_status)


def parse_trigger(spec: str) -> TriggerSpec:
    name, _, rest = spec.partition(":")
    name = name.strip()
    if not name:
        raise TriggerSyntaxError("a trigger name comes first, e.g. OnNew or OnNewActivity:...")
    trigger = TriggerSpec(trigger=name)
    seen: set[str] = set()
    for part in (p.strip() for p in rest.split(";")):
        if not part:
            continue
        key, eq, raw = part.partition("=")
        key = key.strip()
        if not eq or key not in COMPONENTS:
            raise TriggerSyntaxError(
                f"{part!r} is not COMPONENT=VALUES; components: {', '.join(COMPONENTS)}"
            )
        if key in seen:
            raise TriggerSyntaxError(f"{key} is given twice; list all values once")
        seen.add(key)
        values = [v.strip() for v in raw.split(",") if v.strip()]
        if not values:
            raise TriggerSyntaxError(f"{key} has no values (leave it out to mean all)")
        if key == "channels":
            trigger.channels.extend(_parsed(values, parse_channel))
        elif key == "activity_types":
            trigger.activity_types.extend(_parsed(values, parse_activity_type))
        elif key == "status_changes":
            trigger.status_changes.extend(_status_change(v) for v in values)
        elif key == "whatsapp_channels":
            trigger.whatsapp_channels.extend(values)
        else:
            trigger.whatsapp_statuses.extend(_parsed(values, parse_whatsapp_status))
    return trigger


def format_trigger(trigger: TriggerSpec, names: CatalogueNames | None = None) -> str:
    """The SPEC of ``trigger``; ``parse_trigger`` reads it back to an equal message."""
    names = names or CatalogueNames()

    def named(ids: list[int], table: Mapping[int, str]) -> str:
        return ",".join(table.get(i, str(i)) for i in ids)

    def change(sc: StatusChange) -> str:
        source = named([sc.from_status], names.statuses) if sc.from_status else ""
        return f"{source}>{named([sc.to_status], names.statuses)}"

    parts = []
    if trigger.channels:
        parts.append(f"channels={named(list(trigger.channels), names.channels)}")
    if trigger.activity_types:
        parts.append(f"activity_types={named(list(trigger.activity_types), names.activity_types)}")
    if trigger.status_changes:
        parts.append(f"status_changes={','.join(change(sc) for sc in trigger.status_changes)}")
    if trigger.whatsapp_channels:
        parts.append(f"whatsapp_channels={','.join(trigger.whatsapp_channels)}")
    if trigger.whatsapp_statuses:
        parts.append(f"whatsapp_statuses={','.join(trigger.whatsapp_statuses)}")
    return trigger.trigger + (":" + ";".join(parts) if parts else "")
