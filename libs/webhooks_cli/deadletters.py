"""``webhooks deadletters``: what the platform's producers and consumers set aside (the
DEADLETTERS stream, through the failures service's ListDeadLetters; a platform token).

Newest first; ``--component`` and ``--reason`` narrow it, ``--limit`` caps it (at most
1,000), ``--page-token`` goes on with older letters and ``--all`` follows every page.
"""

from __future__ import annotations

import argparse

from webhooks.v1.failures_pb2 import (
    ListDeadLettersRequest,
    ListDeadLettersResponse,
    ListedDeadLetter,
)
from webhooks_cli.client import Client
from webhooks_cli.output import note, print_json, print_table
from webhooks_client.protos import timestamp_text

HEADERS = ("SEQ", "SET ASIDE", "COMPONENT", "REASON", "FROM", "SUBJECT", "DETAIL")
DETAIL_WIDTH = 80


def origin_text(listed: ListedDeadLetter) -> str:
    letter = listed.letter
    if letter.notification_id:
        return f"notification {letter.notification_id}"
    if letter.stream:
        return f"{letter.stream} #{letter.stream_sequence}"
    return "-"


def one_line(text: str, width: int = DETAIL_WIDTH) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def row(listed: ListedDeadLetter) -> tuple[str, ...]:
    letter = listed.letter
    return (
        str(listed.sequence),
        timestamp_text(letter.terminated_at),
        letter.component or "-",
        letter.reason or "-",
        origin_text(listed),
        one_line(letter.subject, 60) or "-",
        one_line(letter.detail) or "-",
    )


def list_(args: argparse.Namespace, client: Client) -> int:
    request = ListDeadLettersRequest(
        component=args.component or "",
        reason=args.reason or "",
        limit=args.limit or 0,
        page_token=args.page_token or "",
    )
    with client.other("failures") as failures:
        result: ListDeadLettersResponse = failures.pages(
            "ListDeadLetters", request, "dead_letters", every=args.all
        )
    if args.json:
        print_json(result)
        return 0
    print_table(HEADERS, [row(listed) for listed in result.dead_letters])
    if result.next_page_token:
        note(f"older ones may remain: --page-token {result.next_page_token} (or --all)")
    return 0
