"""Listing what was set aside: the DEADLETTERS stream read newest first, for operators.

Every service writes letters (webhooks_messaging.deadletters); only this service reads
them, with two JetStream API requests: ``$JS.API.STREAM.INFO.DEADLETTERS`` (where the
stream ends) and ``$JS.API.STREAM.MSG.GET.DEADLETTERS`` (one letter by sequence), walking
down from the stream's end. Sequences the stream no longer holds (aged out, replaced by a
newer letter of the same original) are passed over. One call looks at no more than
``SCAN_LIMIT`` sequences, so a narrow filter over a full stream answers in bounded time
with a page token to go on from.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from google.protobuf.message import DecodeError
from nats.js import JetStreamContext
from nats.js.api import RawStreamMsg
from nats.js.errors import NotFoundError

from webhooks.v1 import failures_pb2, messages_pb2
from webhooks_messaging.deadletters import COMPONENTS, REASONS
from webhooks_messaging.streams import DEADLETTERS

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
SCAN_LIMIT = 10_000  # sequences looked at per call
GET_CONCURRENCY = 64  # letters asked for at once
MAX_PAGE_TOKEN = 20


class InvalidListing(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Listing:
    component: str
    reason: str
    limit: int
    before: int | None  # only sequences below this one (None: from the stream's end)

    def matches(self, subject: str) -> bool:
        tokens = subject.split(".")
        if len(tokens) < 3:
            return False
        return (not self.component or tokens[1] == self.component) and (
            not self.reason or tokens[2] == self.reason
        )


def listing_of(request: failures_pb2.ListDeadLettersRequest) -> Listing:
    """The request's filters, checked; InvalidListing names the field."""
    if request.component and request.component not in COMPONENTS:
        raise InvalidListing("component", f"one of {', '.join(COMPONENTS)}")
    if request.reason and request.reason not in REASONS:
        raise InvalidListing("reason", f"one of {', '.join(REASONS)}")
    if not 0 <= request.limit <= MAX_LIMIT:
        raise InvalidListing("limit", f"must be between 1 and {MAX_LIMIT} (0: {DEFAULT_LIMIT})")
    before = None
    if request.page_token:
        token = request.page_token
        if len(token) > MAX_PAGE_TOKEN or not token.isascii() or not token.isdigit():
            raise InvalidListing("page_token", "not a page token of this listing")
        before = int(token)
    return Listing(request.component, request.reason, request.limit or DEFAULT_LIMIT, before)


async def _get(js: JetStreamContext, seq: int) -> RawStreamMsg | None:
    try:
        return await js.get_msg(DEADLETTERS, seq=seq)
    except NotFoundError:
        return None  # aged out or replaced


async def list_dead_letters(
    js: JetStreamContext, listing: Listing
) -> failures_pb2.ListDeadLettersResponse:
    response = failures_pb2.ListDeadLettersResponse()
    try:
        state = (await js.stream_info(DEADLETTERS)).state
    except NotFoundError:
        return response  # not declared yet: nothing was ever set aside
    first = max(int(state.first_seq), 1)
    top = int(state.last_seq)
    if listing.before is not None:
        top = min(top, listing.before - 1)
    seq = top  # the next sequence to look at, going down
    scanned = 0
    while seq >= first and scanned < SCAN_LIMIT:
        chunk = list(range(seq, max(first, seq - GET_CONCURRENCY + 1) - 1, -1))
        messages = await asyncio.gather(*(_get(js, s) for s in chunk))
        for at, message in zip(chunk, messages, strict=True):
            seq = at - 1
            scanned += 1
            if message is None or not listing.matches(message.subject or ""):
                continue
            try:
                letter = messages_pb2.DeadLetter.FromString(message.data or b"")
            except DecodeError:
                continue  # not a letter (whoever may publish deadletters.> could put one)
            response.dead_letters.add(sequence=at, letter=letter)
            if len(response.dead_letters) >= listing.limit:
                break
        if len(response.dead_letters) >= listing.limit:
            break
    if seq >= first:
        response.next_page_token = str(seq + 1)
    return response
