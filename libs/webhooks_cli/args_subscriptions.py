"""The arguments of ``webhooks subscriptions``, ``certificates`` and ``catalogue``: light
modules only (see lazy.py); the handlers are in subscriptions.py, certificates.py and
catalogue.py."""

from __future__ import annotations

import argparse

from webhooks_catalogue.authentication import SECRET_FIELDS
from webhooks_catalogue.retry_policy import DEFAULT_INTERVAL_SECONDS, DEFAULT_RETRIES, MAX_RETRIES
from webhooks_cli.lazy import SubParsers, actions, handler

# The keys of subscriptions.ORDERS, webhooks_client's WEBHOOK_TYPES, SOAP_VERSIONS and
# AUTH_KINDS (which import protobuf): tests/unit/test_cli_startup.py holds them equal.
ORDERS = ("created", "created-asc", "name", "updated")
WEBHOOK_TYPES = ("rest", "soap")
SOAP_VERSIONS = ("1.1", "1.2")
AUTH_KINDS = ("none", "basic", "oauth2-token", "oauth2-client-credentials", "oauth2-password")
TRIGGER_HELP = (
    "TRIGGER[:COMPONENT=V,V;...], e.g. OnNew, "
    "OnNewActivity:activity_types=StatusChange,Remark;channels=WhatsApp,7;"
    "status_changes=Open>Resolved,>Archive or "
    "OnMessageStatus:whatsapp_channels=ch1;whatsapp_statuses=read,failed "
    "(names or ids; a component left out means all; repeat --trigger for more triggers)"
)
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


def add_subscriptions(commands: SubParsers, common: argparse.ArgumentParser) -> None:
    parent = commands.add_parser(
        "subscriptions", help="manage webhook subscriptions", parents=[common], allow_abbrev=False
    )
    sub = parent.add_subparsers(dest="action", required=True, metavar="ACTION")

    action = actions(sub, common, "subscriptions")

    def with_id(parser: argparse.ArgumentParser, *, versioned: bool = False) -> None:
        parser.add_argument("id", metavar="ID", help="subscription id")
        if versioned:
            parser.add_argument(
                "--expected-version", type=int, metavar="V", help="refuse if the version moved"
            )

    parser = action("create", "create", "create a subscription (prints its signing secret once)")
    add_spec_flags(parser, create=True)
    parser.add_argument("--inactive", action="store_true", help="create it deactivated")

    parser = action("list", "list_", "list subscriptions")
    parser.add_argument("--entity")
    state = parser.add_mutually_exclusive_group()
    state.add_argument("--active", dest="active", action="store_const", const=True)
    state.add_argument("--inactive", dest="active", action="store_const", const=False)
    parser.add_argument("--name-contains", metavar="TEXT", help="case-insensitive")
    parser.add_argument("--page-size", type=int, metavar="N", help="default 50, at most 1000")
    parser.add_argument("--page-token", metavar="TOKEN")
    parser.add_argument("--all", action="store_true", help="follow every next page")
    parser.add_argument("--order", choices=ORDERS, default="created", help="default: created")

    with_id(action("get", "get", "show one subscription"))
    parser = action("update", "update", "change the fields given (others keep their value)")
    with_id(parser, versioned=True)
    add_spec_flags(parser, create=False)
    with_id(action("activate", "activate", "resume deliveries"), versioned=True)
    enable_help = "re-enable a webhook the platform disabled (the same as activate)"
    with_id(action("enable", "activate", enable_help), versioned=True)
    with_id(action("deactivate", "deactivate", "suspend deliveries"), versioned=True)
    parser = action("delete", "delete", "delete permanently")
    with_id(parser, versioned=True)
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    with_id(action("history", "history", "the audit trail: every change, secrets masked"))
    parser = action("test", "send_test", "send a test event now and show what the endpoint said")
    parser.add_argument("subscription", metavar="ID|NAME", help="subscription id or name")
    parser.add_argument("--trigger", help="default: the subscription's first trigger")
    parser.add_argument(
        "--data",
        metavar="FILE",
        help="the event's data as a JSON object ('-': stdin); default: a sample of the entity",
    )
    parser = action("rotate-secret", "rotate_secret", "new signing secret (printed once)")
    with_id(parser)
    parser.add_argument(
        "--overlap", type=int, metavar="SECONDS", help="how long the previous secret still signs"
    )


def add_certificates(
    commands: SubParsers,
    common: argparse.ArgumentParser,
) -> None:
    parent = commands.add_parser(
        "certificates", help="manage client certificates (mTLS)", parents=[common]
    )
    sub = parent.add_subparsers(dest="action", required=True, metavar="ACTION")

    action = actions(sub, common, "certificates")

    parser = action("upload", "upload", "upload a certificate and its private key (PEM)")
    parser.add_argument("--name", required=True)
    parser.add_argument("--cert", required=True, metavar="PEMFILE", help="certificate (PEM)")
    parser.add_argument("--key", required=True, metavar="KEYFILE", help="private key (PEM)")
    action("list", "list_", "list certificates: id, name, subject, expiry")
    parser = action("delete", "delete", "delete a certificate no subscription uses")
    parser.add_argument("id", metavar="ID")


def add_catalogue(
    commands: SubParsers,
    common: argparse.ArgumentParser,
) -> None:
    parser = commands.add_parser(
        "catalogue", help="entities, triggers and components", parents=[common]
    )
    parser.add_argument(
        "--values",
        action="store_true",
        help="also the channels, activity types, statuses and tag types (names and ids)",
    )
    parser.set_defaults(client_handler=handler("catalogue", "show"))
