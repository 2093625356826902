"""Ingest: platform events into the EVENTS stream, one verdict per event.

Each valid event is stored with ``Nats-Msg-Id`` = its event id, so the broker itself says
whether it is new (accepted) or seen within the duplicate window (duplicate). The events
of one call are published together and their acknowledgements awaited together. An invalid
event is rejected with the field and the reason, and nothing of it is stored. Each valid
event takes its tenant's lane (lanes.py): standard within the tenant's rate, else bulk.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from webhooks.v1 import messages_pb2, router_pb2
from webhooks_catalogue import WEBHOOK_ENTITY
from webhooks_grpc import Principal
from webhooks_messaging import events_subject, is_valid_tenant
from webhooks_router.lanes import TenantLanes
from webhooks_router.publishing import StreamStore
from webhooks_router.validation import MAX_DATA_BYTES, InvalidEvent, validate_event
from webhooks_telemetry import inject_headers, metrics

ACCEPTED = router_pb2.PUBLISH_STATUS_ACCEPTED
DUPLICATE = router_pb2.PUBLISH_STATUS_DUPLICATE
REJECTED = router_pb2.PUBLISH_STATUS_REJECTED


def _rejected(event_id: str, field: str, reason: str) -> router_pb2.PublishResult:
    return router_pb2.PublishResult(event_id=event_id, status=REJECTED, field=field, reason=reason)


def _check_tenant(event: messages_pb2.PlatformEvent, principal: Principal) -> None:
    """Fills in the caller's tenant; a tenant's token publishes for that tenant only."""
    if not event.tenant:
        event.tenant = principal.tenant
    elif event.tenant != principal.tenant and not principal.platform:
        raise InvalidEvent("tenant", "belongs to another organisation than the token")


def _check_raiser(event: messages_pb2.PlatformEvent) -> None:
    """Webhook events tell an organisation about its own webhooks: only the platform
    raises them (straight onto EVENTS), so a forged "your webhook is disabled" cannot be
    published, by a tenant or by anyone else."""
    if event.entity == WEBHOOK_ENTITY:
        raise InvalidEvent("entity", "Webhook events are raised by the platform itself")


async def ingest(
    store: StreamStore,
    events: Sequence[messages_pb2.PlatformEvent],
    principal: Principal,
    lanes: TenantLanes,
) -> list[router_pb2.PublishResult]:
    results: list[router_pb2.PublishResult | None] = [None] * len(events)
    pending: list[tuple[int, messages_pb2.PlatformEvent, bool]] = []
    refused: Counter[str] = Counter()
    for index, original in enumerate(events):
        event = messages_pb2.PlatformEvent()
        event.CopyFrom(original)
        try:
            _check_tenant(event, principal)
            _check_raiser(event)
            validate_event(event)
        except InvalidEvent as error:
            results[index] = _rejected(event.event_id, error.field, error.reason)
            refused[_refusal(event, error)] += 1
            continue
        pending.append((index, event, lanes.bulk(event.tenant)))
    # One call, one trace context: injected once, not per event (the same headers).
    trace_headers = inject_headers({})
    try:
        duplicates = await store.store(
            [
                (
                    events_subject(event.tenant, event.entity, event.trigger, bulk=bulk),
                    event.SerializeToString(),
                    {"Nats-Msg-Id": event.event_id, **trace_headers},
                )
                for _, event, bulk in pending
            ]
        )
    except Exception:
        refused["unavailable"] += len(pending)  # the call fails: none of them accepted
        raise
    finally:
        count_refused(refused)
    accepted = [0, 0]  # standard, bulk
    for (index, event, bulk), duplicate in zip(pending, duplicates, strict=True):
        status = DUPLICATE if duplicate else ACCEPTED
        results[index] = router_pb2.PublishResult(event_id=event.event_id, status=status)
        accepted[bulk] += not duplicate
    count_accepted(accepted, len(pending) - sum(accepted))
    return [result for result in results if result is not None]


# Counted once per call and reason or lane, not per event; attribute dicts made once.
EVENTS_INGESTED = metrics.counter(metrics.EVENTS_INGESTED)
EVENTS_REJECTED = metrics.counter(metrics.EVENTS_REJECTED)
LANES = ({"lane": "standard"}, {"lane": "bulk"})
REASONS = {
    reason: {"reason": reason}
    for reason in ("invalid", "unauthorized", "too_large", "duplicate", "unavailable")
}


def _refusal(event: messages_pb2.PlatformEvent, error: InvalidEvent) -> str:
    """The bounded reason label of a refused event."""
    if error.field == "tenant" and event.tenant and is_valid_tenant(event.tenant):
        return "unauthorized"  # a valid tenant, not the token's
    if error.field == "data_json" and len(event.data_json) > MAX_DATA_BYTES:
        return "too_large"
    return "invalid"


def count_refused(refused: Counter[str]) -> None:
    for reason, count in refused.items():
        EVENTS_REJECTED.add(count, REASONS[reason])


def count_accepted(accepted: list[int], duplicates: int) -> None:
    for bulk, count in enumerate(accepted):
        if count:
            EVENTS_INGESTED.add(count, LANES[bulk])
    if duplicates:
        EVENTS_REJECTED.add(duplicates, REASONS["duplicate"])
