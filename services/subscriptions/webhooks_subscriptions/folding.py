"""Aggregate states along the notification log, for projections that need whole states.

The listing and the outbox relay both see one domain event at a time but publish or store
the aggregate's state after it. Applying each event to a cached state avoids replaying the
aggregate from the store for every event; a cache miss (a restart, an evicted aggregate)
reconstructs that version from the store.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate


class AggregateFolder:
    def __init__(self, app: Application[UUID], max_cached: int = 10_000) -> None:
        self._app = app
        self._states: OrderedDict[UUID, Aggregate] = OrderedDict()
        self._max_cached = max_cached

    def fold(self, event: Any) -> Aggregate:
        """The state of the event's aggregate right after the event."""
        originator_id: UUID = event.originator_id
        version: int = event.originator_version
        state: Aggregate | None = self._states.pop(originator_id, None)
        if version == 1:
            state = event.mutate(None)
        elif state is not None and state.version == version - 1:
            state = event.mutate(state)
        else:
            state = self._app.repository.get(originator_id, version=version)
        if state is None:
            raise LookupError(f"no state of {originator_id} at version {version}")
        self._states[originator_id] = state
        if len(self._states) > self._max_cached:
            self._states.popitem(last=False)
        return state
