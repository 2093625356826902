"""Exclusivity of repeated triggers in one subscription.

The user guide greys out values already chosen in another trigger of the same name, and a
status change "cannot be reused in another trigger": an event must match at most one
trigger of a kind. An empty component list means "all", so it overlaps everything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from webhooks_catalogue.data import (
    ACTIVITY_STATUS_CHANGE,
    ACTIVITY_TYPES,
    ANY_STATUS,
    CHANNELS,
    OBJECT_STATUSES,
    Component,
    Entity,
    Trigger,
)
from webhooks_catalogue.errors import CatalogueError

# None stands for "all values" (an empty component list); [] for "none of them".
Coverage = Sequence[Any] | None


def check_overlaps(entity: Entity, triggers: Sequence[dict[str, Any]]) -> None:
    """Raise CatalogueError at the later trigger's component when two triggers overlap."""
    for later_index, later in enumerate(triggers):
        spec = entity.trigger(later["trigger"])
        assert spec is not None, "triggers are canonical"
        for earlier_index, earlier in enumerate(triggers[:later_index]):
            if earlier["trigger"] != spec.name:
                continue
            clash = _clash(spec, earlier, later, f"triggers[{earlier_index}]")
            if clash is not None:
                component, message = clash
                raise CatalogueError(
                    f"triggers[{later_index}].{component}",
                    f"{message}; a value may be chosen in only one {spec.name} trigger",
                )


def _clash(
    spec: Trigger, earlier: dict[str, Any], later: dict[str, Any], where: str
) -> tuple[str, str] | None:
    """The later trigger's overlapping component and why, or None."""
    key = spec.distinct_by
    if key is None:
        return "trigger", f"{spec.name} takes no components and is already in {where}"
    if key is not Component.ACTIVITY_TYPES:
        describe = _channel if key is Component.CHANNELS else _whatsapp_channel
        message = _overlap(where, _all(earlier[key]), _all(later[key]), key, describe)
        return None if message is None else (key, message)
    return _activity_clash(spec, earlier, later, where)


def _activity_clash(
    spec: Trigger, earlier: dict[str, Any], later: dict[str, Any], where: str
) -> tuple[str, str] | None:
    # StatusChange activities are told apart by their status changes, so two triggers
    # may both choose activity type 2 as long as their status changes do not overlap.
    key = Component.ACTIVITY_TYPES
    message = _overlap(
        where, _other_types(earlier[key]), _other_types(later[key]), key, _activity_type
    )
    if message is not None:
        return key, message
    if not (_covers_status_change(earlier) and _covers_status_change(later)):
        return None
    if Component.STATUS_CHANGES not in spec.components:
        return key, f"{_activity_type(ACTIVITY_STATUS_CHANGE)} is already chosen in {where}"
    changes = Component.STATUS_CHANGES
    message = _overlap(
        where,
        _all(earlier[changes]),
        _all(later[changes]),
        changes,
        _status_change,
        _same_status_change,
    )
    return None if message is None else (changes, message)


def _overlap(
    where: str,
    earlier: Coverage,
    later: Coverage,
    component: str,
    describe: Callable[[Any], str],
    same: Callable[[Any, Any], bool] = lambda a, b: bool(a == b),
) -> str | None:
    if earlier == [] or later == []:
        return None
    if later is None:
        return f"an empty {component} list means all, which overlaps {where}"
    if earlier is None:
        return f"{where} already covers all {component} (its list is empty)"
    for value in later:
        if any(same(chosen, value) for chosen in earlier):
            return f"{describe(value)} is already chosen in {where}"
    return None


def _all(values: Sequence[Any]) -> Coverage:
    return values or None


def _other_types(types: Sequence[int]) -> Coverage:
    return [t for t in types if t != ACTIVITY_STATUS_CHANGE] if types else None


def _covers_status_change(trigger: dict[str, Any]) -> bool:
    types = trigger[Component.ACTIVITY_TYPES]
    return not types or ACTIVITY_STATUS_CHANGE in types


def _same_status_change(a: dict[str, int], b: dict[str, int]) -> bool:
    return a["to"] == b["to"] and (a["from"] == b["from"] or ANY_STATUS in (a["from"], b["from"]))


def _channel(value: int) -> str:
    return f"channel {value} ({CHANNELS[value]})"


def _whatsapp_channel(value: str) -> str:
    return f"WhatsApp channel {value!r}"


def _activity_type(value: int) -> str:
    return f"activity type {value} ({ACTIVITY_TYPES[value]})"


def _status_change(change: dict[str, int]) -> str:
    source = "any" if change["from"] == ANY_STATUS else OBJECT_STATUSES[change["from"]]
    return f"status change {source}->{OBJECT_STATUSES[change['to']]}"
