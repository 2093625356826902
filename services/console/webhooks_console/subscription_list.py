"""The Webhooks list's page at any size of organisation: a search by name, a sort (name,
created, last modified, failures), "with failures only", and the total the filters match.

Sorting and filtering by failures joins two services: the failures service counts failed
deliveries per webhook (CountFailures), the subscriptions service lists the webhooks
(ListSubscriptions with ``ids`` / ``exclude_ids``). Sorted by failures, the webhooks with
failures come first, most first, then every other one by name; the page token says which
part a page starts in (``f<offset>`` in the first, ``r<token>`` in the second).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from webhooks.v1.failures_pb2 import CountFailuresRequest, SubscriptionFailureCount
from webhooks.v1.subscriptions_pb2 import (
    ListSubscriptionsRequest,
    ListSubscriptionsResponse,
    Subscription,
    SubscriptionOrder,
)
from webhooks_console.pages import call
from webhooks_console.values import BadValue

PAGE_SIZE = 20
IDS_AT_MOST = 5000  # ListSubscriptions' ids / exclude_ids
LIST_AT_MOST = 1000  # ListSubscriptions' largest page
SORTS = {  # value in the URL -> (label, order; None: by failures)
    "created": ("Created (newest first)", SubscriptionOrder.SUBSCRIPTION_ORDER_CREATED_DESC),
    "name": ("Name (A to Z)", SubscriptionOrder.SUBSCRIPTION_ORDER_NAME_ASC),
    "modified": ("Last modified (newest first)", SubscriptionOrder.SUBSCRIPTION_ORDER_UPDATED_DESC),
    "failures": ("Failures (most first)", None),
}
Counts = dict[str, SubscriptionFailureCount]


@dataclass(frozen=True)
class ListRequest:
    query: str = ""
    sort: str = "created"
    with_failures: bool = False
    page_token: str = ""

    @property
    def whole(self) -> bool:
        """Every webhook from its first: no search, no filter, the first page."""
        return not (self.query or self.with_failures or self.page_token)


@dataclass(frozen=True)
class ListPage:
    subscriptions: list[Subscription]
    next_token: str
    total: int
    counts: Counts | None  # failed deliveries of the page's webhooks; None: not known


class FailuresUnknown(Exception):
    """The failures service did not answer: the list cannot filter or sort by failures."""


def total_text(total: int, wanted: ListRequest) -> str:
    """ "1,523 webhooks", "2 webhooks with failures match “crm”"."""
    text = f"{total:,} webhook{'' if total == 1 else 's'}"
    if wanted.with_failures:
        text += " with failures"
    if wanted.query:
        text += f" match{'es' if total == 1 else ''} “{wanted.query}”"
    return text


def failure_counts(ids: Sequence[str]) -> Counts | None:
    """Failed attempts per subscription; None when the failures service cannot say (the
    list is still shown). No ids: every subscription that has any."""
    try:
        response = call(
            "failures", "CountFailures", CountFailuresRequest(subscription_ids=list(ids))
        )
    except grpc.RpcError:
        return None
    return {c.subscription_id: c for c in response.counts}


def _list(**fields: Any) -> ListSubscriptionsResponse:
    found: ListSubscriptionsResponse = call(
        "subscriptions", "ListSubscriptions", ListSubscriptionsRequest(**fields)
    )
    return found


def list_page(wanted: ListRequest) -> ListPage:
    if wanted.sort not in SORTS:
        raise BadValue(f"The list cannot be sorted by “{wanted.sort[:40]}”.")
    if wanted.sort != "failures" and not wanted.with_failures:
        response = _list(
            name_contains=wanted.query,
            page_size=PAGE_SIZE,
            page_token=wanted.page_token,
            order_by=SORTS[wanted.sort][1],
            include_total=True,
        )
        items = list(response.subscriptions)
        counts = failure_counts([s.id for s in items]) if items else {}
        return ListPage(items, response.next_page_token, response.total_size, counts)
    answered = failure_counts(())
    if answered is None:
        raise FailuresUnknown()
    every = {i: c for i, c in answered.items() if c.failed_attempts}
    failing = sorted(every, key=lambda i: (-every[i].failed_attempts, i))[:IDS_AT_MOST]
    if wanted.sort != "failures":
        if not failing:
            return ListPage([], "", 0, every)
        response = _list(
            ids=failing,
            name_contains=wanted.query,
            page_size=PAGE_SIZE,
            page_token=wanted.page_token,
            order_by=SORTS[wanted.sort][1],
            include_total=True,
        )
        return ListPage(
            list(response.subscriptions), response.next_page_token, response.total_size, every
        )
    return _by_failures(wanted, failing, every)


def _failing_shown(wanted: ListRequest, failing: list[str]) -> list[Subscription]:
    """The webhooks with failures that the search matches, most failures first."""
    found: dict[str, Subscription] = {}
    token = ""
    while failing:
        response = _list(
            ids=failing, name_contains=wanted.query, page_size=LIST_AT_MOST, page_token=token
        )
        found.update((s.id, s) for s in response.subscriptions)
        token = response.next_page_token
        if not token:
            break
    return [found[i] for i in failing if i in found]


def _by_failures(wanted: ListRequest, failing: list[str], every: Counts) -> ListPage:
    token = wanted.page_token
    if token and token[0] not in "fr":
        raise BadValue("This page link is not one the list made: go back to the first page.")
    shown = _failing_shown(wanted, failing)
    rows: list[Subscription] = []
    offset = 0
    if not token.startswith("r"):
        try:
            offset = int(token[1:] or 0)
        except ValueError:
            raise BadValue("This page link is not one the list made.") from None
        rows = shown[offset : offset + PAGE_SIZE]
    if wanted.with_failures:
        more = offset + PAGE_SIZE < len(shown)
        return ListPage(rows, f"f{offset + PAGE_SIZE}" if more else "", len(shown), every)
    rest = _list(
        exclude_ids=failing,
        name_contains=wanted.query,
        page_size=max(1, PAGE_SIZE - len(rows)),
        page_token=token[1:] if token.startswith("r") else "",
        order_by=SubscriptionOrder.SUBSCRIPTION_ORDER_NAME_ASC,
        include_total=True,
    )
    total = len(shown) + rest.total_size
    if len(rows) == PAGE_SIZE:
        more_failing = offset + PAGE_SIZE < len(shown)
        following = f"f{offset + PAGE_SIZE}" if more_failing else ("r" if rest.total_size else "")
        return ListPage(rows, following, total, every)
    rows += rest.subscriptions
    following = f"r{rest.next_page_token}" if rest.next_page_token else ""
    return ListPage(rows, following, total, every)
