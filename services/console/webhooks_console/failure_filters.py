"""The Failed Events filters as a person fills them: the webhook by name (the picker sets
its id; without scripts the typed name is looked up here), the trigger as the list shows
it ("On Message Status"), and every value the list cannot use answered with a sentence in
the form's words above the filled filters, never an error page that loses them."""

from __future__ import annotations

from typing import Any

import grpc
from werkzeug.datastructures import MultiDict

from webhooks.v1.failures_pb2 import FailedEventFilter
from webhooks.v1.subscriptions_pb2 import (
    GetSubscriptionRequest,
    ListSubscriptionsRequest,
    SubscriptionOrder,
)
from webhooks_catalogue import entity as catalogue_entity
from webhooks_catalogue import entity_names, limits
from webhooks_catalogue.vocabulary import entity_label, trigger_label
from webhooks_client.failure_text import STATES
from webhooks_client.protos import timestamp
from webhooks_console.pages import call, rpc_code
from webhooks_console.times import moment_at, offset_text, utc_offset
from webhooks_console.values import BadValue, choice, whole_number
from webhooks_grpc.errors import field_violations

FILTERS = (
    *("subscription", "webhook", "entity", "trigger", "channel", "subchannel"),
    *("error_code", "retries", "state", "since", "until", "message"),
    "tz",  # the viewer's offset from UTC in minutes east, for since and until (console.js)
)
NAME_MATCHES = 20  # webhooks looked at to resolve a typed name
# Per field the failures service names: the filter's input, its label and what it takes.
FILTER_FIELDS = {
    "filter.entity": ("entity", "Entity", "choose one from the list."),
    "filter.trigger": (
        "trigger",
        "Trigger",
        "choose one from the suggestions, as the list shows it.",
    ),
    "filter.error_codes": (
        "error_code",
        "Error code",
        "write an HTTP status such as 500, or a kind of failure such as Timeout or SOAP "
        "fault; several separated by commas.",
    ),
    "filter.subchannel": (
        "subchannel",
        "Subchannel",
        f"at most {limits.SUBCHANNEL_LENGTH} characters.",
    ),
    "filter.message_contains": (
        "message",
        "Error message",
        f"at most {limits.FILTER_TEXT_LENGTH} characters.",
    ),
}


class FilterProblem(BadValue):
    """A filter value that cannot be used; the message is a sentence naming the filter,
    ``field`` the input it is about ("" when not one)."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def filter_values(args: MultiDict[str, str]) -> dict[str, Any]:
    return {name: args.get(name, "") for name in FILTERS if args.get(name)}


def filter_of(args: MultiDict[str, str]) -> FailedEventFilter:
    """The filter inputs as a FailedEventFilter (the service validates the values it can
    take; what cannot even be put into the request is refused here, in sentences)."""
    try:
        return _filter_of(args)
    except FilterProblem:
        raise
    except BadValue as problem:
        raise FilterProblem(f"The filter {problem} — change it and filter again.") from None


def _filter_of(args: MultiDict[str, str]) -> FailedEventFilter:
    entity = args.get("entity", "").strip()
    trigger = args.get("trigger", "").strip()
    check_trigger(entity, trigger)
    found = FailedEventFilter(
        entity=entity,
        trigger=trigger,
        subchannel=args.get("subchannel", "").strip(),
        message_contains=args.get("message", "").strip(),
    )
    subscription_id = webhook_id(args.get("subscription", ""), args.get("webhook", ""))
    if subscription_id:
        found.subscription_ids.append(subscription_id)
    codes = [c.strip() for c in args.get("error_code", "").split(",") if c.strip()]
    found.error_codes.extend(codes)
    state = args.get("state", "")
    if state:
        found.states.append(STATES[choice("State", state, STATES)])
    retries = args.get("retries", "").strip()
    if retries:
        found.min_retry_attempts = whole_number(
            "Retry attempts", retries, 0, limits.FILTER_RETRY_ATTEMPTS
        )
    channel = args.get("channel", "").strip()
    if channel:
        found.channel = whole_number("Channel", channel)
    minutes = viewer_offset(args.get("tz", ""))
    for name, label, target in (("since", "From", found.since), ("until", "To", found.until)):
        typed = args.get(name, "").strip()
        if typed:
            try:
                target.CopyFrom(timestamp(moment_at(typed, minutes)))
            except ValueError:
                raise FilterProblem(
                    f"The filter {label}: a date and time from year 1 to 9999 — change it and "
                    "filter again.",
                    name,
                ) from None
    return found


def viewer_offset(text: str) -> int:
    """The From and To filters' offset from UTC in minutes: what console.js sent (the
    viewer's), 0 (UTC) when nothing was; one out of bounds is a sentence."""
    if not text.strip():
        return 0
    minutes = utc_offset(text)
    if minutes is None:
        raise FilterProblem(
            f"The time zone sent with the From and To filters (“{text.strip()[:20]}”) is not "
            "one: it must be from UTC-14:00 to UTC+14:00. Filter again from this page.",
            "tz",
        )
    return minutes


def filter_zone(values: dict[str, Any]) -> str:
    """The zone the From and To filters were read in, as their labels say it: the offset a
    valid ``tz`` gives ("UTC+05:30"), else UTC (console.js says "your time" instead)."""
    minutes = utc_offset(str(values.get("tz", "")))
    return offset_text(minutes) if minutes is not None else "UTC"


def check_trigger(entity: str, trigger: str) -> None:
    """A trigger no entity (or not the chosen one) has: a sentence naming the choices."""
    if not trigger:
        return
    shown = trigger[:40]
    chosen = catalogue_entity(entity) if entity else None
    if chosen is not None:
        if chosen.trigger(trigger) is None:
            names = ", ".join(trigger_label(t.name) for t in chosen.triggers)
            raise FilterProblem(
                f"{entity_label(chosen.name)} has no trigger “{shown}”. Its triggers are: {names}."
            )
        return
    for name in entity_names():
        each = catalogue_entity(name)
        if each is not None and each.trigger(trigger) is not None:
            return
    raise FilterProblem(
        f"No trigger is called “{shown}”. Choose one from the suggestions, as the list "
        "shows it (for example “On Message Status”).",
        "trigger",
    )


def webhook_name(subscription_id: str) -> str:
    """The name of the webhook with this id, "" when there is none."""
    try:
        found = call("subscriptions", "GetSubscription", GetSubscriptionRequest(id=subscription_id))
    except grpc.RpcError as error:
        if rpc_code(error) in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
            return ""
        raise
    return str(found.name)


def webhook_id(subscription_id: str, typed: str) -> str:
    """The webhook to filter by: the picker's id while its name is still what the box says,
    else the typed name looked up (the whole name, or a part only one webhook's has)."""
    typed = typed.strip()
    if subscription_id and (
        not typed or webhook_name(subscription_id).casefold() == typed.casefold()
    ):
        return subscription_id
    if not typed:
        return ""
    response = call(
        "subscriptions",
        "ListSubscriptions",
        ListSubscriptionsRequest(
            name_contains=typed[: limits.NAME_CONTAINS_LENGTH],
            page_size=NAME_MATCHES,
            order_by=SubscriptionOrder.SUBSCRIPTION_ORDER_NAME_ASC,
        ),
    )
    matches = list(response.subscriptions)
    exact = [s for s in matches if s.name.casefold() == typed.casefold()]
    if exact:
        return str(exact[0].id)
    if len(matches) == 1:
        return str(matches[0].id)
    if not matches:
        raise FilterProblem(f"No webhook's name contains “{typed[:80]}”.", "webhook")
    names = ", ".join(f"“{s.name}”" for s in matches[:5])
    more = " and more" if len(matches) > 5 else ""
    raise FilterProblem(
        f"Several webhooks' names contain “{typed[:80]}” ({names}{more}): type more of the "
        "name, or choose one from the suggestions.",
        "webhook",
    )


def refused_problem(error: grpc.RpcError, args: MultiDict[str, str]) -> FilterProblem | None:
    """The sentence for a filter the failures service refused (INVALID_ARGUMENT), naming
    the filter and the value as the form shows them; None for any other failure."""
    if rpc_code(error) != grpc.StatusCode.INVALID_ARGUMENT:
        return None
    for field, _ in field_violations(error):
        if field in FILTER_FIELDS:
            name, label, takes = FILTER_FIELDS[field]
            value = args.get(name, "").strip()[:80]
            return FilterProblem(f"The {label} filter “{value}” cannot be used: {takes}", name)
    return FilterProblem(
        "The list cannot use these filters as they are: change one and filter again."
    )
