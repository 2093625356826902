"""Failed Events' From and To read in the viewer's time (the offset console.js sends), and
the form's WhatsApp channel ids one per row (issue 16)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from werkzeug.datastructures import MultiDict

from webhooks_console.failure_filters import FilterProblem, filter_of, filter_zone
from webhooks_console.forms import channel_ids, parse_form, trigger_spec
from webhooks_console.times import moment_at, offset_text, utc_offset


def test_offsets_from_utc_are_bounded_minutes() -> None:
    assert [utc_offset(t) for t in ("330", "-300", "+60", " 0 ", "840", "-840")] == [
        330,
        -300,
        60,
        0,
        840,
        -840,
    ]
    for bad in ("841", "-841", "5.5", "330x", "", "1e3", "٣٣٠", "99999"):
        assert utc_offset(bad) is None, bad
    assert [offset_text(m) for m in (330, -90, 0, 840)] == [
        "UTC+05:30",
        "UTC-01:30",
        "UTC",
        "UTC+14:00",
    ]


def test_a_typed_moment_is_read_at_the_offset() -> None:
    assert moment_at("2026-12-08T05:30", 330) == datetime(2026, 12, 8, 0, 0, tzinfo=UTC)
    assert moment_at("2026-12-08T05:30", 0) == datetime(2026, 12, 8, 5, 30, tzinfo=UTC)
    # An RFC 3339 time keeps its own offset.
    assert moment_at("2026-12-08T05:30+01:00", 330) == datetime(2026, 12, 8, 4, 30, tzinfo=UTC)
    for text, minutes in (("0001-01-01T00:00", 60), ("9999-12-31T23:59", -60), ("x", 0)):
        with pytest.raises(ValueError):
            moment_at(text, minutes)


def test_the_filter_takes_from_and_to_in_the_viewers_time() -> None:
    found = filter_of(MultiDict({"since": "2026-12-08T05:30", "until": "2026-12-08T06:00"}))
    assert found.since.ToDatetime(tzinfo=UTC) == datetime(2026, 12, 8, 5, 30, tzinfo=UTC)
    local = MultiDict({"since": "2026-12-08T05:30", "until": "2026-12-08T06:00", "tz": "330"})
    found = filter_of(local)
    assert found.since.ToDatetime(tzinfo=UTC) == datetime(2026, 12, 8, 0, 0, tzinfo=UTC)
    assert found.until.ToDatetime(tzinfo=UTC) == datetime(2026, 12, 8, 0, 30, tzinfo=UTC)
    assert filter_zone({"tz": "330"}) == "UTC+05:30"
    assert filter_zone({"tz": "9999"}) == filter_zone({}) == "UTC"
    with pytest.raises(FilterProblem) as forged:
        filter_of(MultiDict({"since": "2026-12-08T05:30", "tz": "9999"}))
    assert "from UTC-14:00 to UTC+14:00" in str(forged.value) and forged.value.field == "tz"
    with pytest.raises(FilterProblem) as early:
        filter_of(MultiDict({"since": "0001-01-01T00:00", "tz": "60"}))
    assert str(early.value).startswith("The filter From: a date and time from year 1 to 9999")
    assert early.value.field == "since"


def test_whatsapp_channel_ids_one_per_row() -> None:
    assert channel_ids(["wa-1", " wa-2 ", "", "wa-1"]) == ["wa-1", "wa-2"]
    assert channel_ids(["wa-1\r\nwa-2\n\n", "wa-3, wa-4"]) == ["wa-1", "wa-2", "wa-3", "wa-4"]
    posted = MultiDict(
        [
            ("entity", "WhatsApp"),
            ("triggers[0].trigger", "OnMessageStatus"),
            ("triggers[0].whatsapp_channels", "wa-main"),
            ("triggers[0].whatsapp_channels", ""),
            ("triggers[0].whatsapp_channels", "wa-support"),
        ]
    )
    row = parse_form(posted).triggers[0]
    assert row.whatsapp_channels == ["wa-main", "wa-support"]
    spec = trigger_spec(row, ["whatsapp_channels", "whatsapp_statuses"])
    assert list(spec.whatsapp_channels) == ["wa-main", "wa-support"]
