"""``webhooks subscriptions ...``: create, list, get, update, activate, deactivate, delete,
history and rotate-secret, each one call (update: a get, then the update) of the
subscriptions service; and test, which asks the sender to send a test event now."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

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
from webhooks_catalogue.authentication import SECRET_FIELDS
from webhooks_catalogue.failure_classes import failure_name
from webhooks_catalogue.retry_policy import DEFAULT_INTERVAL_SECONDS, DEFAULT_RETRIES, MAX_RETRIES
from webhooks_cli.client import Client
from webhooks_cli.errors import CliError, UsageError
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
from webhooks_client.subscription_spec import SOAP_VERSIONS, WEBHOOK_TYPES
from webhooks_client.subscription_text import AUTH_KINDS, subscription_fields

Handler = Callable[[argparse.Namespace, Client], int]
ORDERS = {
    "created": SubscriptionOrder.SUBSCRIPTION_ORDER_CREATED_DESC,
    "created-asc": SubscriptionOrder.SUBSCRIPTION_ORDER_CREATED_ASC,
    "name": SubscriptionOrder.SUBSCRIPTION_ORDER_NAME_ASC,
    "updated": SubscriptionOrder.SUBSCRIPTION_ORDER_UPDATED_DESC,
}
TRIGGER_HELP = (
    "TRIGGER[:COMPONENT=V,V;...], e.g. OnNew, "
    "OnNewActivity:activity_types=StatusChange,Remark;channels=WhatsApp,7;"
    "status_changes=Open>Resolved,>Archive or "
    "OnMessageStatus:whatsapp_channels=ch1;whatsapp_statuses=read,failed "
    "(names or ids; a component left out means all; repeat --trigger for more triggers)"
)
COUNT_BATCH = 1000  # subscription ids per CountFailures call (the service's limit)
COUNT_TIMEOUT_SECONDS = 5.0  # a slow failures service must not hold up the listing
SECRET_HELP = "%s; '-' reads it from stdin (a command line is visible in ps: prefer %s)"


def add_spec_flags(parser: argparse.ArgumentParser, *, create: bool) -> None:
    """The flags of create; on update each is optional and only the ones given change."""
    details = parser.add_argument_group("details")
    details.add_argument("--name", required=create, help="a unique name in the organisation")
    details.add_argument("--entity", required=create, help="Object, User, Tag, WhatsApp, ...")
    details.add_argument(
        "--trigger", action="append", required=create, metavar="SPEC", help=TRIGGER_HELP
    )
    details.add_argument(
        "--complete-data",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="send the entire data of the event, not a summary (not recommended)",
    )
    webhook = parser.add_argument_group("webhook")
    webhook.add_argument(
        "--type", choices=WEBHOOK_TYPES, help="REST (JSON) or SOAP (XML); create: rest"
    )
    webhook.add_argument("--url", required=create, help="https:// URL of the receiver")
    webhook.add_argument("--certificate", metavar="ID", help="client certificate for mTLS")
    webhook.add_argument(
        "--rate-limit",
        type=rate_limit,
        metavar="N",
        help="at most N deliveries per second to the webhook, across every sender "
        "(0: no limit; create: none); deliveries beyond it wait, they never fail",
    )
    webhook.add_argument("--soap-operation", metavar="OP", help="body element / WSDL operation")
    webhook.add_argument("--soap-namespace", metavar="NS", help="namespace of the body element")
    webhook.add_argument("--soap-action", metavar="A", help="SOAPAction or action parameter")
    webhook.add_argument("--soap-version", choices=SOAP_VERSIONS)
    webhook.add_argument(
        "--soap-param", action="append", metavar="NAME=VALUE", help="extra body element"
    )
    wsdl = webhook.add_mutually_exclusive_group()
    wsdl.add_argument("--wsdl-url", metavar="URL", help="https:// URL of a WSDL document")
    wsdl.add_argument("--wsdl-file", metavar="PATH", help="a WSDL document to upload")
    auth = parser.add_argument_group("authentication")
    auth.add_argument("--auth", choices=AUTH_KINDS, help="create: none")
    auth.add_argument("--username")
    auth.add_argument("--header-prefix", metavar="PREFIX", help="e.g. Bearer")
    auth.add_argument("--token-url", metavar="URL")
    auth.add_argument("--scope")
    auth.add_argument("--client-id")
    for name in (secret.replace("_", "-") for secret in SECRET_FIELDS):
        group = auth.add_mutually_exclusive_group()
        group.add_argument(
            f"--{name}", help=SECRET_HELP % (name.replace("-", " "), f"--{name}-file")
        )
        group.add_argument(f"--{name}-file", metavar="PATH", help=f"read the {name} from PATH")
    retry = parser.add_argument_group("retries")
    retry.add_argument(
        "--retries", type=int, metavar="N", help=f"0..{MAX_RETRIES} (default {DEFAULT_RETRIES})"
    )
    retry.add_argument(
        "--interval", type=int, metavar="SECONDS", help=f"default {DEFAULT_INTERVAL_SECONDS}"
    )


def rate_limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError("0 (no limit) or more deliveries per second")
    return value


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
    """The subscription with this id, else the one with exactly this name (any case)."""
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
    got: Subscription = client.call("GetSubscription", GetSubscriptionRequest(id=id_or_name))
    return got


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
        failure = failure_name(attempt.failure_class) or "unspecified"
        print_fields(
            [
                ("subscription", f"{subscription.name} ({subscription.id})"),
                ("url", attempt.url),
                ("trigger", attempt.trigger),
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
        return sys.stdin.buffer.read() if path == "-" else open(path, "rb").read()
    except OSError as error:
        raise UsageError(f"--data: cannot read {path}: {error.strerror}") from None


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parent = commands.add_parser(
        "subscriptions", help="manage webhook subscriptions", parents=[common], allow_abbrev=False
    )
    sub = parent.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=help, parents=[common], allow_abbrev=False)
        parser.set_defaults(client_handler=handler)
        return parser

    def with_id(parser: argparse.ArgumentParser, *, versioned: bool = False) -> None:
        parser.add_argument("id", metavar="ID", help="subscription id")
        if versioned:
            parser.add_argument(
                "--expected-version", type=int, metavar="V", help="refuse if the version moved"
            )

    parser = action("create", create, "create a subscription (prints its signing secret once)")
    add_spec_flags(parser, create=True)
    parser.add_argument("--inactive", action="store_true", help="create it deactivated")

    parser = action("list", list_, "list subscriptions")
    parser.add_argument("--entity")
    state = parser.add_mutually_exclusive_group()
    state.add_argument("--active", dest="active", action="store_const", const=True)
    state.add_argument("--inactive", dest="active", action="store_const", const=False)
    parser.add_argument("--name-contains", metavar="TEXT", help="case-insensitive")
    parser.add_argument("--page-size", type=int, metavar="N", help="default 50, at most 1000")
    parser.add_argument("--page-token", metavar="TOKEN")
    parser.add_argument("--all", action="store_true", help="follow every next page")
    parser.add_argument("--order", choices=ORDERS, default="created", help="default: created")

    with_id(action("get", get, "show one subscription"))
    parser = action("update", update, "change the fields given (others keep their value)")
    with_id(parser, versioned=True)
    add_spec_flags(parser, create=False)
    with_id(action("activate", activate, "resume deliveries"), versioned=True)
    enable_help = "re-enable a webhook the platform disabled (the same as activate)"
    with_id(action("enable", activate, enable_help), versioned=True)
    with_id(action("deactivate", deactivate, "suspend deliveries"), versioned=True)
    parser = action("delete", delete, "delete permanently")
    with_id(parser, versioned=True)
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    with_id(action("history", history, "the audit trail: every change, secrets masked"))
    parser = action("test", send_test, "send a test event now and show what the endpoint said")
    parser.add_argument("subscription", metavar="ID|NAME", help="subscription id or name")
    parser.add_argument("--trigger", help="default: the subscription's first trigger")
    parser.add_argument(
        "--data",
        metavar="FILE",
        help="the event's data as a JSON object ('-': stdin); default: a sample of the entity",
    )
    parser = action("rotate-secret", rotate_secret, "new signing secret (printed once)")
    with_id(parser)
    parser.add_argument(
        "--overlap", type=int, metavar="SECONDS", help="how long the previous secret still signs"
    )
