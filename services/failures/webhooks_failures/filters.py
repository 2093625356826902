"""The failed-events filter of a request, validated into a plain ``Filter`` (``model.py``);
``view_query`` turns that value into SQL. Every refusal is an ``InvalidRequest`` naming
the request field, which the API maps to INVALID_ARGUMENT."""

from __future__ import annotations

from collections.abc import Sequence

from webhooks.v1 import failures_pb2, messages_pb2
from webhooks_catalogue import CHANNELS, entity_names, limits
from webhooks_catalogue import entity as catalogue_entity
from webhooks_catalogue.failure_classes import failure_name
from webhooks_catalogue.vocabulary import failure_class_of
from webhooks_failures.model import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Filter
from webhooks_grpc import InvalidField, to_datetime

# The bounds on requests, and why each is that number, are in webhooks_catalogue.limits.
MAX_FILTER_SUBSCRIPTIONS = limits.FILTER_SUBSCRIPTION_IDS
MAX_ERROR_CODES = limits.FILTER_ERROR_CODES
MAX_TEXT = limits.FILTER_TEXT_LENGTH  # message_contains, subchannel
MAX_RETRY_ATTEMPTS = limits.FILTER_RETRY_ATTEMPTS
MAX_ID = limits.ID_LENGTH  # subscription and delivery ids (UUIDs)
MAX_PAGE_TOKEN = limits.PAGE_TOKEN_LENGTH
KNOWN_STATES = frozenset(value for value in failures_pb2.FailedEventState.values() if value != 0)
# Error codes that are not an HTTP status: the failure classes (an HTTP_STATUS failure is
# asked for by its status). A class matches its failures with a status too: a SOAP fault's
# error code is its HTTP 500 (view_query).
FAILURE_CODES = frozenset(
    failure_name(value)
    for value in messages_pb2.FailureClass.values()
    if value not in (messages_pb2.FAILURE_CLASS_UNSPECIFIED, messages_pb2.FAILURE_CLASS_HTTP_STATUS)
)


# A request field that cannot be used; ``field`` is its path (``filter.until``). The same
# class as the timestamp conversion raises, so one ``except`` covers both.
InvalidRequest = InvalidField


def subscription_ids(values: Sequence[str], field: str) -> tuple[str, ...]:
    if len(values) > MAX_FILTER_SUBSCRIPTIONS:
        raise InvalidRequest(
            field, f"at most {MAX_FILTER_SUBSCRIPTIONS} subscription ids, got {len(values)}"
        )
    ids: list[str] = []
    for value in values:
        if not value:
            raise InvalidRequest(field, "an empty subscription id")
        if len(value) > MAX_ID:
            raise InvalidRequest(field, f"a subscription id has at most {MAX_ID} characters")
        if value not in ids:
            ids.append(value)
    return tuple(ids)


def _error_code(value: str) -> str:
    if len(value) > limits.ERROR_CODE_LENGTH:
        raise InvalidRequest(
            "filter.error_codes", f"an error code has at most {limits.ERROR_CODE_LENGTH} characters"
        )
    code = value.strip()
    if code.isdigit() and 100 <= int(code) <= 599:
        return str(int(code))
    # A class as people write it too, by its id or the label the console and CLI show:
    # "soap-fault" and "SOAP fault" are soap_fault, "Timed out" is timeout.
    named = failure_class_of(code)
    if named is not None and named in FAILURE_CODES:
        return named
    raise InvalidRequest(
        "filter.error_codes",
        f"{value[:40]!r} is neither an HTTP status (100-599) nor one of "
        + ", ".join(sorted(FAILURE_CODES)),
    )


def _entity_and_trigger(entity: str, trigger: str) -> tuple[str, str]:
    """The catalogue's spelling of both, so a filter matches whatever case was typed."""
    for field, word in (("filter.entity", entity), ("filter.trigger", trigger)):
        if len(word) > limits.CATALOGUE_NAME_LENGTH:
            raise InvalidRequest(field, f"at most {limits.CATALOGUE_NAME_LENGTH} characters")
    name = ""
    if entity:
        found = catalogue_entity(entity)
        if found is None:
            raise InvalidRequest(
                "filter.entity",
                f"unknown entity {entity[:40]!r}; one of {', '.join(entity_names())}",
            )
        name = found.name
    if not trigger:
        return name, ""
    if name:
        found = catalogue_entity(name)
        assert found is not None
        known = found.trigger(trigger)
        if known is None:
            raise InvalidRequest(
                "filter.trigger",
                f"{name} has no trigger {trigger[:40]!r}; one of "
                + ", ".join(t.name for t in found.triggers),
            )
        return name, known.name
    for each in entity_names():
        found = catalogue_entity(each)
        assert found is not None
        known = found.trigger(trigger)
        if known is not None:
            return "", known.name
    raise InvalidRequest("filter.trigger", f"no entity has a trigger {trigger[:40]!r}")


def _states(values: Sequence[int]) -> tuple[int, ...]:
    if len(values) > limits.FILTER_STATES:
        raise InvalidRequest(
            "filter.states", f"at most {limits.FILTER_STATES} states, got {len(values)}"
        )
    states: list[int] = []
    for state in values:
        if state not in KNOWN_STATES:
            raise InvalidRequest(
                "filter.states",
                f"unknown state {state}; one of "
                + ", ".join(
                    failures_pb2.FailedEventState.Name(s)  # type: ignore[arg-type]
                    for s in sorted(KNOWN_STATES)
                ),
            )
        if state not in states:
            states.append(state)
    return tuple(states)


def filter_of(request: failures_pb2.FailedEventFilter) -> Filter:
    """The validated Filter of a request's filter, or InvalidRequest naming the field."""
    states = _states(request.states)
    if len(request.error_codes) > MAX_ERROR_CODES:
        raise InvalidRequest(
            "filter.error_codes",
            f"at most {MAX_ERROR_CODES} error codes, got {len(request.error_codes)}",
        )
    codes = tuple(dict.fromkeys(_error_code(code) for code in request.error_codes))
    channel: int | None = None
    if request.HasField("channel"):
        if request.channel not in CHANNELS:
            raise InvalidRequest("filter.channel", f"unknown channel id {request.channel}")
        channel = request.channel
    if len(request.subchannel) > MAX_TEXT:
        raise InvalidRequest("filter.subchannel", f"at most {MAX_TEXT} characters")
    if len(request.message_contains) > MAX_TEXT:
        raise InvalidRequest("filter.message_contains", f"at most {MAX_TEXT} characters")
    since = to_datetime(request.since, "filter.since") if request.HasField("since") else None
    until = to_datetime(request.until, "filter.until") if request.HasField("until") else None
    if since is not None and until is not None and since >= until:
        raise InvalidRequest(
            "filter.until",
            f"must be after filter.since ({since.isoformat()}), got {until.isoformat()}",
        )
    min_retries: int | None = None
    if request.HasField("min_retry_attempts"):
        if not 0 <= request.min_retry_attempts <= MAX_RETRY_ATTEMPTS:
            raise InvalidRequest(
                "filter.min_retry_attempts",
                f"between 0 and {MAX_RETRY_ATTEMPTS}, got {request.min_retry_attempts}",
            )
        min_retries = request.min_retry_attempts
    entity, trigger = _entity_and_trigger(request.entity.strip(), request.trigger.strip())
    return Filter(
        subscription_ids=subscription_ids(request.subscription_ids, "filter.subscription_ids"),
        entity=entity,
        trigger=trigger,
        channel=channel,
        subchannel=request.subchannel,
        error_codes=codes,
        states=states,
        since=since,
        until=until,
        message_contains=request.message_contains,
        min_retry_attempts=min_retries,
    )


def page_size_of(value: int) -> int:
    if value < 0 or value > MAX_PAGE_SIZE:
        raise InvalidRequest("page_size", f"between 0 and {MAX_PAGE_SIZE}, got {value}")
    return value or DEFAULT_PAGE_SIZE


def listing_of(request: failures_pb2.ListFailedEventsRequest) -> tuple[Filter, int, str]:
    """The filter, page size and page token of a listing request."""
    found = filter_of(request.filter)
    size = page_size_of(request.page_size)
    if len(request.page_token) > MAX_PAGE_TOKEN:
        raise InvalidRequest(
            "page_token", f"not a page token of this listing (at most {MAX_PAGE_TOKEN})"
        )
    return found, size, request.page_token
