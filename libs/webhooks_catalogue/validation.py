"""Whether a subscription's entity and triggers fit the catalogue, and their canonical form.

Canonical triggers have every component key, lists de-duplicated and sorted, so two
equal subscriptions compare equal and the router can read them without defaults.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from webhooks_catalogue import limits
from webhooks_catalogue.data import (
    ACTIVITY_STATUS_CHANGE,
    ACTIVITY_TYPES,
    ANY_STATUS,
    CHANNELS,
    COMPONENTS,
    OBJECT_STATUSES,
    WHATSAPP_STATUSES,
    Component,
    Entity,
    Trigger,
)
from webhooks_catalogue.errors import CatalogueError, CatalogueErrors
from webhooks_catalogue.lookup import entity as find_entity
from webhooks_catalogue.lookup import entity_names
from webhooks_catalogue.overlaps import check_overlaps

MAX_TRIGGERS = limits.TRIGGERS
WHATSAPP_CHANNEL_ID = re.compile(rf"[A-Za-z0-9_.:-]{{1,{limits.WHATSAPP_CHANNEL_ID_LENGTH}}}")
# How many values each component list may hold (webhooks_catalogue.limits says why).
COMPONENT_LIMITS: dict[Component, int] = {
    Component.CHANNELS: limits.CHANNELS_PER_TRIGGER,
    Component.ACTIVITY_TYPES: limits.ACTIVITY_TYPES_PER_TRIGGER,
    Component.STATUS_CHANGES: limits.STATUS_CHANGES_PER_TRIGGER,
    Component.WHATSAPP_CHANNELS: limits.WHATSAPP_CHANNELS_PER_TRIGGER,
    Component.WHATSAPP_STATUSES: limits.WHATSAPP_STATUSES_PER_TRIGGER,
}


def validate_triggers(
    entity: str, triggers: Sequence[Mapping[str, Any]]
) -> tuple[str, list[dict[str, Any]]]:
    """The canonical entity name and triggers, or CatalogueError naming the bad value.

    Every problem at once (CatalogueErrors when there are several): the entity, the list,
    and each trigger on its own, the first problem of each. Whether triggers overlap is
    checked only once every trigger is valid on its own.
    """
    problems: list[CatalogueError] = []
    found: Entity | None = None
    try:
        found = _entity(entity)
    except CatalogueError as error:
        problems.append(error)
    canonical: list[dict[str, Any]] = []
    try:
        _check_list(found, triggers)
    except CatalogueError as error:
        problems.append(error)
    else:
        for i, raw in enumerate(triggers):
            try:
                if found is None:  # only what does not depend on the entity
                    _trigger_name(f"triggers[{i}]", raw)
                else:
                    canonical.append(_trigger(found, f"triggers[{i}]", raw))
            except CatalogueError as error:
                problems.append(error)
    if problems:
        raise problems[0] if len(problems) == 1 else CatalogueErrors(problems)
    assert found is not None
    check_overlaps(found, canonical)
    return found.name, canonical


def _check_list(entity: Entity | None, triggers: object) -> None:
    if not isinstance(triggers, list | tuple):
        raise CatalogueError("triggers", "must be a list")
    if not triggers:
        of = f" of {entity.name}" if entity is not None else ""
        raise CatalogueError("triggers", f"at least one trigger{of} is required")
    if len(triggers) > MAX_TRIGGERS:
        raise CatalogueError("triggers", f"at most {MAX_TRIGGERS} triggers, got {len(triggers)}")


def validate_rate_limit(value: object, field: str = "webhook.rate_limit_per_second") -> int:
    """Deliveries per second, 0 (no limit, the default when absent) to the bound."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise CatalogueError(field, "must be a whole number of deliveries per second")
    if not 0 <= value <= limits.RATE_LIMIT_PER_SECOND:
        bound = limits.RATE_LIMIT_PER_SECOND
        raise CatalogueError(field, f"must be 0 (no limit) to {bound}, got {value}")
    return value


def _entity(name: object) -> Entity:
    if not isinstance(name, str) or not name.strip():
        raise CatalogueError("entity", "is required")
    _check_word_length("entity", name)
    found = find_entity(name)
    if found is None:
        expected = ", ".join(entity_names())
        raise CatalogueError("entity", f"unknown entity {name!r}; expected one of {expected}")
    return found


def _trigger_name(path: str, raw: object) -> str:
    """The trigger's name, once the trigger is an object of known keys with a name."""
    if not isinstance(raw, Mapping):
        raise CatalogueError(path, "must be an object")
    # A misspelt component would otherwise be read as "all" and widen the subscription.
    for key in raw:
        if key != "trigger" and key not in COMPONENTS:
            raise CatalogueError(f"{path}.{key}", "is not a trigger component")
    name = raw.get("trigger")
    if not isinstance(name, str) or not name.strip():
        raise CatalogueError(f"{path}.trigger", "is required")
    _check_word_length(f"{path}.trigger", name)
    return name.strip()


def _trigger(entity: Entity, path: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    name = _trigger_name(path, raw)
    spec = entity.trigger(name)
    if spec is None:
        expected = ", ".join(t.name for t in entity.triggers)
        message = f"{name!r} is not a trigger of {entity.name}; expected one of {expected}"
        raise CatalogueError(f"{path}.trigger", message)
    result: dict[str, Any] = {"trigger": spec.name}
    for component in COMPONENTS:
        field = f"{path}.{component}"
        values = raw.get(component) or []
        if not isinstance(values, list | tuple):
            raise CatalogueError(field, "must be a list")
        if len(values) > COMPONENT_LIMITS[component]:
            bound = COMPONENT_LIMITS[component]
            raise CatalogueError(field, f"at most {bound} values, got {len(values)}")
        if values and component not in spec.components:
            raise CatalogueError(field, f"{entity.name} {spec.name} {_allowed(spec)}")
        # Plain str keys: canonical triggers are stored and serialised as they are.
        result[component.value] = _COMPONENT_PARSERS[component](field, values)
    activity_types = result[Component.ACTIVITY_TYPES]
    if (
        result[Component.STATUS_CHANGES]
        and activity_types
        and ACTIVITY_STATUS_CHANGE not in activity_types
    ):
        raise CatalogueError(
            f"{path}.status_changes",
            "needs activity type 2 (StatusChange) in activity_types, or activity_types empty",
        )
    return result


def _check_word_length(field: str, name: str) -> None:
    # Checked before the name is looked up, so an unknown one is short enough to quote.
    if len(name) > limits.CATALOGUE_NAME_LENGTH:
        bound = limits.CATALOGUE_NAME_LENGTH
        raise CatalogueError(field, f"at most {bound} characters, got {len(name)}")


def _allowed(spec: Trigger) -> str:
    if not spec.components:
        return "takes no components"
    return "takes only " + ", ".join(spec.components)


def _ids(values: Mapping[int, str], kind: str) -> Callable[[str, Sequence[Any]], list[int]]:
    def parse(field: str, given: Sequence[Any]) -> list[int]:
        for i, value in enumerate(given):
            if isinstance(value, bool) or value not in values:
                raise CatalogueError(f"{field}[{i}]", f"{value!r} is not a known {kind} id")
        return sorted(set(given))

    return parse


def _status_changes(field: str, given: Sequence[Any]) -> list[dict[str, int]]:
    pairs: set[tuple[int, int]] = set()
    for i, change in enumerate(given):
        path = f"{field}[{i}]"
        if not isinstance(change, Mapping):
            raise CatalogueError(path, 'must be an object with "from" and "to"')
        for key in change:
            if key not in ("from", "to"):
                raise CatalogueError(f"{path}.{key}", "is not part of a status change")
        source = change.get("from") or ANY_STATUS
        target = change.get("to") or None
        if isinstance(source, bool) or (source != ANY_STATUS and source not in OBJECT_STATUSES):
            raise CatalogueError(f"{path}.from", f"{source!r} is not a known object status id")
        if target is None:
            raise CatalogueError(f"{path}.to", "is required")
        if isinstance(target, bool) or target not in OBJECT_STATUSES:
            raise CatalogueError(f"{path}.to", f"{target!r} is not a known object status id")
        if source == target:
            raise CatalogueError(f"{path}.to", 'must differ from "from"')
        pairs.add((source, target))
    return [{"from": source, "to": target} for source, target in sorted(pairs)]


def _whatsapp_channels(field: str, given: Sequence[Any]) -> list[str]:
    for i, value in enumerate(given):
        if not isinstance(value, str) or not WHATSAPP_CHANNEL_ID.fullmatch(value):
            bound = limits.WHATSAPP_CHANNEL_ID_LENGTH
            raise CatalogueError(
                f"{field}[{i}]",
                f"must be a channel id of 1 to {bound} characters A-Z a-z 0-9 _ . : -",
            )
    return sorted(set(given))


def _whatsapp_statuses(field: str, given: Sequence[Any]) -> list[str]:
    statuses: set[str] = set()
    for i, value in enumerate(given):
        if isinstance(value, str) and len(value) > limits.WHATSAPP_STATUS_LENGTH:
            bound = limits.WHATSAPP_STATUS_LENGTH
            raise CatalogueError(f"{field}[{i}]", f"at most {bound} characters, got {len(value)}")
        status = value.strip().casefold() if isinstance(value, str) else None
        if status not in WHATSAPP_STATUSES:
            expected = ", ".join(WHATSAPP_STATUSES)
            raise CatalogueError(f"{field}[{i}]", f"{value!r} is not one of {expected}")
        statuses.add(status)
    return sorted(statuses)


_COMPONENT_PARSERS: dict[Component, Callable[[str, Sequence[Any]], list[Any]]] = {
    Component.CHANNELS: _ids(CHANNELS, "channel"),
    Component.ACTIVITY_TYPES: _ids(ACTIVITY_TYPES, "activity type"),
    Component.STATUS_CHANGES: _status_changes,
    Component.WHATSAPP_CHANNELS: _whatsapp_channels,
    Component.WHATSAPP_STATUSES: _whatsapp_statuses,
}
