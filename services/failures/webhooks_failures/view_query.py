"""A Filter as SQL over the failed events table, and the page tokens of ListFailedEvents.

Pagination is by keyset on the listing order (last_attempt_us DESC, delivery_id DESC): a
page token is the (last_attempt_us, delivery_id) of the last row shown, with a hash of
the tenant and filter it was issued for. A row that arrives or is updated between pages
gets a newer last_attempt_us (its attempt happened after the first page was read), so it
sorts above the cursor: the pages that follow neither repeat nor skip any row that was
below the cursor. Such an updated row is not shown again in this walk if it was already
shown, and is shown on a fresh first page (not in this walk) if it had not been reached
yet; a row expired between pages simply is not returned.

Text in the error message (``message_contains``, a case-insensitive substring with % and _
literal) is ``message_key LIKE '%text%'`` over the casefolded message: PostgreSQL answers
it with its pg_trgm index. On SQLite the view may look the text up first in the message
search (view_schema): the tenant's distinct messages containing it, a ``Messages``; the
listing then reads those messages' rows through the index (tenant, message_key,
last_attempt_us, delivery_id), one ordered range per message (a UNION ALL, as for an IN
list) or, for many messages, all their rows sorted. view_search decides when that is
the faster way (a rare text); texts shorter than a trigram are always the ordered scan.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from webhooks.v1 import messages_pb2
from webhooks_catalogue.failure_classes import failure_name
from webhooks_failures.model import Filter, InvalidPageToken
from webhooks_grpc import page_tokens

ORDER = "last_attempt_us DESC, delivery_id DESC"
# A failure class by the name filters give (``soap_fault``): an error code that is a class
# matches every failure of that class, also those with an HTTP status (a SOAP fault's
# error_code is its status, 500), so it is matched on failure_class.
CLASSES = {
    failure_name(value): value
    for value in messages_pb2.FailureClass.values()
    if value != messages_pb2.FAILURE_CLASS_UNSPECIFIED
}
# Ids per IN list on SQLite (it allows 32766 parameters); PostgreSQL takes one array.
CHUNK = 500
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TOKEN_VERSION = 1
# An IN list on an indexed column is read as one ordered index range per value merged by
# a UNION ALL (each stops after a page): an IN list cannot give the listing order from one
# index range. Beyond this many values the plain IN is used (one ordered scan, filtered).
MAX_SPLIT_VALUES = 16
# The list fields of a Filter and their columns; each has an index (tenant, column,
# last_attempt_us, delivery_id). A listing splits on the first one given with several
# values (in this order: the most selective first).
LIST_FIELDS = (
    ("subscription_ids", "subscription_id"),
    ("error_codes", "error_code"),
    ("states", "state"),
)


def micros(moment: datetime) -> int:
    """Microseconds since the epoch, exactly; naive datetimes are UTC (as in protobuf)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // timedelta(microseconds=1)


def search_phrase(text: str) -> str | None:
    """The FTS5 query of messages that contain ``text`` (casefolded, as message_key is):
    one phrase of its trigrams, i.e. exactly the substring; None when ``text`` is shorter
    than a trigram (the search cannot answer it)."""
    needle = text.casefold()
    if len(needle) < 3:
        return None
    return '"' + needle.replace('"', '""') + '"'


@dataclass(frozen=True)
class Messages:
    """The tenant's messages that contain the filter's text, and the events index by
    message (SQLite: the query names it, the planner's statistics being an average over
    messages common and rare)."""

    keys: tuple[str, ...]
    index: str


def id_chunks(dialect: str, ids: Sequence[str]) -> Iterable[Sequence[str]]:
    """``ids`` in as many lists as one IN (or, on PostgreSQL, one array) takes."""
    if dialect == "postgres":
        return [ids]
    return [ids[start : start + CHUNK] for start in range(0, len(ids), CHUNK)]


def in_list(dialect: str, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
    """``column`` is one of ``values``: the condition and its parameters."""
    if dialect == "postgres":
        return f"{column} = ANY(?)", [list(values)]
    return f"{column} IN ({', '.join('?' * len(values))})", list(values)


def like_pattern(text: str) -> str:
    """``text`` as a case-insensitive substring LIKE pattern over the casefolded column."""
    escaped = text.casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass
class Where:
    """Conditions joined by AND, with their parameters in placeholder order."""

    clauses: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def add(self, clause: str, *params: Any) -> None:
        self.clauses.append(clause)
        self.params.extend(params)

    def any_of(self, column: str, values: tuple[Any, ...]) -> None:
        if not values:
            self.add("0 = 1")
        elif len(values) == 1:
            self.add(f"{column} = ?", values[0])
        else:
            self.add(f"{column} IN ({', '.join('?' * len(values))})", *values)

    def sql(self) -> str:
        return " AND ".join(self.clauses)


def where(
    tenant: str, filter: Filter, *, skip: str = "", messages: Messages | None = None
) -> Where:
    """The filter's conditions; ``skip`` names a list field the caller splits on;
    ``messages``: the text's messages, in place of the LIKE."""
    w = Where()
    w.add("tenant = ?", tenant)
    for name, column in LIST_FIELDS:
        values: tuple[Any, ...] = getattr(filter, name)
        if name == "error_codes" and failure_classes(filter):
            _error_codes(w, filter)
        elif values and name != skip:
            w.any_of(column, values)
    if filter.entity:
        w.add("entity = ?", filter.entity)
    if filter.trigger:
        w.add("trigger_name = ?", filter.trigger)
    if filter.channel is not None:
        w.add("channel = ?", filter.channel)
    if filter.subchannel:
        w.add("subchannel = ?", filter.subchannel)
    if filter.since is not None:
        w.add("last_attempt_us >= ?", micros(filter.since))
    if filter.until is not None:
        w.add("last_attempt_us < ?", micros(filter.until))
    if filter.min_retry_attempts is not None:
        # retry_attempts is attempts - 1 (the attempts after the first, every series).
        w.add("attempts >= ?", filter.min_retry_attempts + 1)
    if messages is not None:
        if skip != "messages":
            w.any_of("message_key", messages.keys)
    elif filter.message_contains:
        w.add("message_key LIKE ? ESCAPE '\\'", like_pattern(filter.message_contains))
    return w


def failure_classes(filter: Filter) -> tuple[int, ...]:
    """The failure classes among the filter's error codes (the others are HTTP statuses)."""
    return tuple(CLASSES[code] for code in filter.error_codes if code in CLASSES)


def _error_codes(w: Where, filter: Filter) -> None:
    """Error codes with failure classes in them: a row's error code is one of them (a
    status, or the class of a failure without one) or its class is one of the classes."""
    codes, classes = filter.error_codes, failure_classes(filter)
    w.add(
        f"(error_code IN ({', '.join('?' * len(codes))}) "
        f"OR failure_class IN ({', '.join('?' * len(classes))}))",
        *codes,
        *classes,
    )


def source(table: str, messages: Messages | None = None) -> str:
    """The FROM of a query over ``table``."""
    return table if messages is None else f"{table} INDEXED BY {messages.index}"


def split_field(
    filter: Filter, messages: Messages | None = None
) -> tuple[str, str, tuple[Any, ...]] | None:
    """The list field a page reads as a UNION ALL of ordered ranges, if any: the text's
    messages when the listing reads their index, else the first list field given."""
    if messages is not None:
        if 1 < len(messages.keys) <= MAX_SPLIT_VALUES:
            return "messages", "message_key", messages.keys
        return None
    for name, column in LIST_FIELDS:
        values: tuple[Any, ...] = getattr(filter, name)
        if name == "error_codes" and failure_classes(filter):
            continue  # not one column: the condition is where's
        if 1 < len(values) <= MAX_SPLIT_VALUES:
            return name, column, values
    return None


def listing_sql(
    table: str,
    columns: str,
    tenant: str,
    filter: Filter,
    limit: int,
    after: tuple[int, str] | None,
    messages: Messages | None = None,
) -> tuple[str, list[Any]]:
    """SELECT ``columns`` of the rows matching ``filter`` in listing order, after the
    keyset ``after`` (last_attempt_us, delivery_id) when given, at most ``limit``; with
    ``messages``, through the index by message (see the module's doc)."""
    split = split_field(filter, messages)
    w = where(tenant, filter, skip=split[0] if split else "", messages=messages)
    if after is not None:
        # A row-value comparison: both databases read it as one index range.
        w.add("(last_attempt_us, delivery_id) < (?, ?)", *after)
    base = f"SELECT {columns} FROM {source(table, messages)} WHERE {w.sql()}"
    if split is None:
        return f"{base} ORDER BY {ORDER} LIMIT ?", [*w.params, limit]
    _, column, values = split
    branches = []
    params: list[Any] = []
    for i, value in enumerate(values):
        branches.append(f"SELECT * FROM ({base} AND {column} = ? ORDER BY {ORDER} LIMIT ?) AS b{i}")
        params += [*w.params, value, limit]
    union = " UNION ALL ".join(branches)
    return f"SELECT * FROM ({union}) AS u ORDER BY {ORDER} LIMIT ?", [*params, limit]


def filter_hash(tenant: str, filter: Filter) -> str:
    # repr of a frozen dataclass of tuples, ints, strings and datetimes is stable.
    return hashlib.sha256(repr((tenant, filter)).encode()).hexdigest()[:16]


def encode_token(tenant: str, filter: Filter, last_us: int, delivery_id: str) -> str:
    return page_tokens.encode([TOKEN_VERSION, filter_hash(tenant, filter), last_us, delivery_id])


def decode_token(token: str, tenant: str, filter: Filter) -> tuple[int, str]:
    try:
        version, digest, last_us, delivery_id = page_tokens.decode(token)
    except (ValueError, TypeError):
        raise InvalidPageToken("not a page token this service returned") from None
    if (
        version != TOKEN_VERSION
        or not isinstance(last_us, int)
        or isinstance(last_us, bool)
        or not isinstance(delivery_id, str)
        or not isinstance(digest, str)
    ):
        raise InvalidPageToken("not a page token this service returned")
    if digest != filter_hash(tenant, filter):
        raise InvalidPageToken("the page token was returned for another filter")
    return last_us, delivery_id
