"""``webhooks subscriptions ...``: create, list, get, update, activate, deactivate, delete,
history and rotate-secret, each one call (update: a get, then the update) of the
subscriptions service; and test, which asks the sender to send a test event now."""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

from webhooks.v1.failures_pb2 import CountFailuresRequest, SubscriptionFailureCount
from webhooks.v1.sender_pb2 import SendTestEventRequest
from webhooks.v1.subscriptions_pb2 import (
    CreateSubscriptionRequest,
    DeleteSubscriptionRequest,
    GetSubscriptionHistoryRequest,
    GetSubscriptionRequest,
    ListSubscriptionsRequest,
    ListSubscriptionsResponse,
    RotateSigningSecretRequest,
    SetSubscriptionActiveRequest,
    Subscription,
    SubscriptionOrder,
    UpdateSubscriptionRequest,
)
from webhooks_catalogue.failure_classes import failure_name
from webhooks_catalogue.limits import EVENT_DATA_BYTES
from webhooks_catalogue.vocabulary import failure_class_label, trigger_label
from webhooks_cli.client import Client
from webhooks_cli.errors import CliError, UsageError, data_size_problem
from webhooks_cli.output import note, print_fields, print_json, print_table
from webhooks_cli.spec import create_spec, update_spec
from webhooks_cli.views import (
    HISTORY_HEADERS,
    SUBSCRIPTION_HEADERS,
    history_row,
    subscription_row,
    subscriptions_data,
)
from webhooks_client.health_text import health_fields
from webhooks_client.subscription_text import subscription_fields

Handler = Callable[[argparse.Namespace, Client], int]
ORDERS = {
    "created": SubscriptionOrder.SUBSCRIPTION_ORDER_CREATED_DESC,
    "created-asc": SubscriptionOrder.SUBSCRIPTION_ORDER_CREATED_ASC,
    "name": SubscriptionOrder.SUBSCRIPTION_ORDER_NAME_ASC,
    "updated": SubscriptionOrder.SUBSCRIPTION_ORDER_UPDATED_DESC,
}
COUNT_BATCH = 1000  # subscription ids per CountFailures call (the service's limit)
COUNT_TIMEOUT_SECONDS = 5.0  # a slow failures service must not hold up the listing


def create(args: argparse.Namespace, client: Client) -> int:
    request = CreateSubscriptionRequest(subscription=create_spec(args))
    if args.inactive:
        request.active = False
    response = client.call("CreateSubscription", request)
    if args.json:
        print_json(response)
    else:
        secret = ("new signing secret", response.signing_secret)
        print_fields([*subscription_fields(response.subscription), secret])
    note("The signing secret is shown only this once: store it now.")
    return 0


def list_(args: argparse.Namespace, client: Client) -> int:
    request = ListSubscriptionsRequest(
        entity=args.entity or "",
        name_contains=args.name_contains or "",
        page_size=args.page_size or 0,
        page_token=args.page_token or "",
        order_by=ORDERS[args.order],
    )
    if args.active is not None:
        request.active = args.active
    result: ListSubscriptionsResponse = client.pages(
        "ListSubscriptions", request, "subscriptions", every=args.all
    )
    counts = failure_counts(client, [s.id for s in result.subscriptions])
    if args.json:
        print_json(subscriptions_data(result, counts))
        return 0
    print_table(
        SUBSCRIPTION_HEADERS,
        [subscription_row(s, counts.get(s.id) if counts else None) for s in result.subscriptions],
    )
    if result.next_page_token:
        note(f"more: --page-token {result.next_page_token} (or --all)")
    return 0


def failure_counts(client: Client, ids: list[str]) -> dict[str, SubscriptionFailureCount] | None:
    """Failed attempts and events per subscription, or None when the failures service
    cannot say: the listing is shown anyway, with "-" in that column."""
    counts: dict[str, SubscriptionFailureCount] = {}
    try:
        with client.other("failures") as failures:
            for start in range(0, len(ids), COUNT_BATCH):
                request = CountFailuresRequest(subscription_ids=ids[start : start + COUNT_BATCH])
                response = failures.call("CountFailures", request, timeout=COUNT_TIMEOUT_SECONDS)
                counts.update((c.subscription_id, c) for c in response.counts)
    except CliError as err:
        note(f"failure counts not shown: {err.message}")
        return None
    zero = SubscriptionFailureCount()
    return {i: counts.get(i, zero) for i in ids}


def show(args: argparse.Namespace, subscription: Subscription) -> int:
    if args.json:
        print_json(subscription)
    else:
        print_fields([*subscription_fields(subscription), *health_fields(subscription.health)])
    return 0


def get(args: argparse.Namespace, client: Client) -> int:
    return show(args, client.call("GetSubscription", GetSubscriptionRequest(id=args.id)))


def update(args: argparse.Namespace, client: Client) -> int:
    current = client.call("GetSubscription", GetSubscriptionRequest(id=args.id))
    spec, mask = update_spec(current, args)
    # The flags were applied to what was just read: without a version given, send that
    # one, so a change made in between is refused rather than overwritten.
    version = current.version if args.expected_version is None else args.expected_version
    request = UpdateSubscriptionRequest(
        id=args.id, subscription=spec, update_mask=mask, expected_version=version
    )
    return show(args, client.call("UpdateSubscription", request))


def set_active(active: bool) -> Handler:
    def handler(args: argparse.Namespace, client: Client) -> int:
        request = SetSubscriptionActiveRequest(id=args.id, active=active)
        if args.expected_version is not None:
            request.expected_version = args.expected_version
        return show(args, client.call("SetSubscriptionActive", request))

    return handler


activate, deactivate = set_active(True), set_active(False)


def delete(args: argparse.Namespace, client: Client) -> int:
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError("delete: stdin is not a terminal, confirm with --yes")
        answer = input(f"Delete subscription {args.id}? This cannot be undone. [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            note("not deleted")
            return 1
    request = DeleteSubscriptionRequest(id=args.id)
    if args.expected_version is not None:
        request.expected_version = args.expected_version
    response = client.call("DeleteSubscription", request)
    if args.json:
        print_json(response)
    else:
        print(f"deleted {response.id} (version {response.version})")
    return 0


def history(args: argparse.Namespace, client: Client) -> int:
    response = client.call("GetSubscriptionHistory", GetSubscriptionHistoryRequest(id=args.id))
    if args.json:
        print_json(response)
    else:
        print_table(HISTORY_HEADERS, [history_row(e) for e in response.entries])
    return 0


def rotate_secret(args: argparse.Namespace, client: Client) -> int:
    request = RotateSigningSecretRequest(id=args.id)
    if args.overlap is not None:
        request.overlap_seconds = args.overlap
    response = client.call("RotateSigningSecret", request)
    if args.json:
        print_json(response)
    else:
        secret = ("new signing secret", response.signing_secret)
        print_fields([*subscription_fields(response.subscription), secret])
    note("The new signing secret is shown only this once: store it now.")
    return 0


def find(client: Client, id_or_name: str) -> Subscription:
    """The subscription with this id, else the one with exactly this name (any case);
    CliError "no subscription named ..." when neither is found."""
    request = ListSubscriptionsRequest(name_contains=id_or_name, page_size=1000)
    while True:
        page = client.call("ListSubscriptions", request)
        for subscription in page.subscriptions:
            if id_or_name in (subscription.id, subscription.name) or (
                subscription.name.casefold() == id_or_name.casefold()
            ):
                found: Subscription = subscription
                return found
        if not page.next_page_token:
            break
        request.page_token = page.next_page_token
    if not _is_uuid(id_or_name):  # not a name, and no id either
        raise CliError(f"no subscription named {id_or_name!r}")
    got: Subscription = client.call("GetSubscription", GetSubscriptionRequest(id=id_or_name))
    return got


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def send_test(args: argparse.Namespace, client: Client) -> int:
    subscription = find(client, args.subscription)
    request = SendTestEventRequest(subscription_id=subscription.id, trigger=args.trigger or "")
    if args.data:
        request.data_json = _read_data(args.data)
    with client.other("sender") as sender:
        attempt = sender.call("SendTestEvent", request).attempt
    if args.json:
        print_json(attempt)
    else:
        failure = failure_class_label(failure_name(attempt.failure_class) or "unspecified")
        print_fields(
            [
                ("subscription", f"{subscription.name} ({subscription.id})"),
                ("url", attempt.url),
                ("trigger", trigger_label(attempt.trigger)),
                ("result", "delivered" if attempt.outcome == 1 else f"failed ({failure})"),
                ("status code", str(attempt.status_code or "-")),
                ("duration", f"{attempt.duration_ms} ms"),
                ("error", attempt.error_message or "-"),
                ("response", attempt.response_snippet.decode("utf-8", "replace")[:2000] or "-"),
            ]
        )
    return 0 if attempt.outcome == 1 else 1


def _read_data(path: str) -> bytes:
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as error:
        raise UsageError(f"--data: cannot read {path}: {error.strerror}") from None
    if len(data) > EVENT_DATA_BYTES:
        raise UsageError(f"--data: {data_size_problem(len(data))}")
    return data
