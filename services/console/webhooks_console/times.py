"""A moment as the console shows it: a ``<time>`` element whose text is a readable UTC time
(what a page without scripts shows) that console.js rewrites in the viewer's local time."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp
from markupsafe import Markup


def local_time(ts: Timestamp) -> Markup:
    """``<time class="local" datetime="2026-12-07T23:03:00Z">7 Dec 2026, 23:03 UTC</time>``;
    empty for an unset timestamp."""
    if ts.seconds == 0 and ts.nanos == 0:
        return Markup("")
    moment = ts.ToDatetime()
    iso = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    text = f"{moment.day} {moment:%b %Y, %H:%M} UTC"
    return Markup('<time class="local" datetime="{}">{}</time>').format(iso, text)
