"""The router commands of the CLI without a router: flags and files to PlatformEvents,
batching, time parsing, the replay window and progress display."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from webhooks.v1.common_pb2 import StatusChange
from webhooks.v1.messages_pb2 import PlatformEvent
from webhooks.v1.router_pb2 import ReplayProgress
from webhooks_cli.errors import UsageError
from webhooks_cli.event_objects import (
    EventSyntaxError,
    build_event,
    parse_events_text,
    parse_status_change,
    read_events_file,
)
from webhooks_cli.events import batches, event_from_args
from webhooks_cli.main import main, parse_args
from webhooks_cli.replay import ProgressView, fraction_done, progress_bar, window
from webhooks_cli.times import TimeSyntaxError, parse_duration, parse_time
from webhooks_router.validation import validate_event

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
PUBLISH = ["events", "publish"]


def from_flags(*flags: str) -> PlatformEvent:
    return event_from_args(parse_args([*PUBLISH, *flags]), now=NOW)


# --- times ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T09:30:00Z", datetime(2024, 5, 1, 9, 30, tzinfo=UTC)),
        ("2024-05-01T11:30:00+02:00", datetime(2024, 5, 1, 9, 30, tzinfo=UTC)),
        ("2024-05-01 09:30:00.250z", datetime(2024, 5, 1, 9, 30, 0, 250000, tzinfo=UTC)),
        ("now", NOW),
        ("2h", NOW - timedelta(hours=2)),
        ("30m", NOW - timedelta(minutes=30)),
        ("90s", NOW - timedelta(seconds=90)),
        ("1d", NOW - timedelta(days=1)),
        ("1w", NOW - timedelta(weeks=1)),
        ("1h30m", NOW - timedelta(minutes=90)),
        ("2h ago", NOW - timedelta(hours=2)),
        (" 1.5h ", NOW - timedelta(minutes=90)),
    ],
)
def test_times_in_every_accepted_form(text: str, expected: datetime) -> None:
    assert parse_time(text, NOW) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "2h from now", "5y", "-2h", "2024-13-01T00:00Z"])
def test_unreadable_times_are_refused(text: str) -> None:
    with pytest.raises(TimeSyntaxError):
        parse_time(text, NOW)


def test_a_time_without_a_zone_is_refused_not_guessed() -> None:
    with pytest.raises(TimeSyntaxError, match="time zone"):
        parse_time("2024-05-01T09:30:00", NOW)


def test_durations() -> None:
    assert parse_duration("1h30m") == timedelta(minutes=90)
    with pytest.raises(TimeSyntaxError):
        parse_duration("h")


# --- one event from flags ---------------------------------------------------------------------


def test_flags_become_a_platform_event() -> None:
    event = from_flags(
        *("--entity", "Object", "--trigger", "OnNewActivity", "--event-id", "e-1"),
        *("--occurred-at", "2024-05-01T09:30:00Z", "--channel", "WhatsApp"),
        *("--subchannel", "1205", "--activity-type", "StatusChange"),
        *("--status-change", "Open>Resolved", "--data", '{"Id": 7}'),
    )
    expected = PlatformEvent(
        event_id="e-1",
        entity="Object",
        trigger="OnNewActivity",
        channel=7,
        subchannel="1205",
        activity_type=2,
        status_change=StatusChange(from_status=1, to_status=2),
        data_json=b'{"Id":7}',
    )
    expected.occurred_at.FromDatetime(datetime(2024, 5, 1, 9, 30, tzinfo=UTC))
    assert event == expected
    assert not event.tenant  # the router fills in the caller's


def test_defaults_a_new_id_now_and_empty_data() -> None:
    first = from_flags("--entity", "Tag", "--trigger", "OnAdd")
    second = from_flags("--entity", "Tag", "--trigger", "OnAdd")
    assert first.event_id and first.event_id != second.event_id
    assert first.occurred_at.ToDatetime(tzinfo=UTC) == NOW
    assert json.loads(first.data_json) == {}
    assert not first.HasField("channel") and not first.HasField("activity_type")


def test_whatsapp_flags_and_ids_for_names() -> None:
    event = from_flags(
        *("--entity", "WhatsApp", "--trigger", "OnMessageStatus"),
        *("--whatsapp-channel", "wa-1", "--whatsapp-status", "READ", "--occurred-at", "2h"),
    )
    assert (event.whatsapp_channel, event.whatsapp_status) == ("wa-1", "read")
    assert event.occurred_at.ToDatetime(tzinfo=UTC) == NOW - timedelta(hours=2)
    assert from_flags("--entity", "User", "--trigger", "OnNew", "--channel", "4").channel == 4


def test_data_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_text('{"a": [1, 2]}')
    event = from_flags("--entity", "Tag", "--trigger", "OnAdd", "--data-file", str(path))
    assert json.loads(event.data_json) == {"a": [1, 2]}


def test_sample_data_and_fields_from_the_catalogue_sample() -> None:
    event = from_flags("--entity", "Object", "--trigger", "OnNewActivity", "--sample")
    assert json.loads(event.data_json)["Id"] == 48213377
    assert event.HasField("activity_type") and event.HasField("status_change")
    overridden = from_flags(
        "--entity", "Object", "--trigger", "OnNewActivity", "--sample", "--channel", "Mail"
    )
    assert overridden.channel == 4


def accepted_by_the_router(event: PlatformEvent) -> None:
    event.tenant = "acme"  # the CLI sets the tenant of its token when it publishes
    validate_event(event, subject=None, now=NOW.timestamp())


@pytest.mark.parametrize("activity", ["Remark", "AssignChange", "12"])
def test_sample_with_another_activity_type_is_a_valid_event_of_it(activity: str) -> None:
    event = from_flags(
        "--entity", "Object", "--trigger", "OnNewActivity", "--sample", "--activity-type", activity
    )
    assert not event.HasField("status_change")
    newest = json.loads(event.data_json)["Activities"][-1]
    assert newest["Type"] == event.activity_type != 2
    accepted_by_the_router(event)


def test_sample_status_change_follows_the_one_given() -> None:
    event = from_flags(
        "--entity", "Object", "--trigger", "OnNewActivity", "--sample", "--status-change", ">3"
    )
    assert event.status_change.to_status == 3
    data = json.loads(event.data_json)
    assert data["StatusID"] == 3 and data["Activities"][-1]["Data"] == {"statusId": 3}
    accepted_by_the_router(event)


def test_sample_whatsapp_status_and_channel_follow_the_options() -> None:
    flags = ["--entity", "WhatsApp", "--trigger", "OnMessageStatus", "--sample"]
    event = from_flags(*flags, "--whatsapp-status", "Read", "--whatsapp-channel", "wa-2")
    assert (event.whatsapp_status, event.whatsapp_channel) == ("read", "wa-2")
    data = json.loads(event.data_json)
    assert (data["status"], data["channelId"]) == ("read", "wa-2")
    accepted_by_the_router(event)


def test_sample_data_names_the_channel_given() -> None:
    event = from_flags("--entity", "Object", "--trigger", "OnNew", "--sample", "--channel", "Mail")
    data = json.loads(event.data_json)
    assert data["StreamProviderType"] == data["User"]["Identity"]["StreamProviderType"] == 4


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--trigger", "OnNew"], "--entity and --trigger"),
        (["--entity", "User", "--trigger", "OnNew", "--channel", "Pigeon"], "channel"),
        (["--entity", "User", "--trigger", "OnNew", "--data", "[1]"], "JSON object"),
        (["--entity", "User", "--trigger", "OnNew", "--data", "{x"], "not valid JSON"),
        (["--entity", "User", "--trigger", "OnNew", "--occurred-at", "soon"], "occurred_at"),
        (["--entity", "Nope", "--trigger", "OnNew", "--sample"], "--sample"),
        (["--entity", "User", "--trigger", "OnNew", "--status-change", "Open>"], "target"),
        (["--entity", "User", "--trigger", "OnNew", "--whatsapp-status", "lost"], "WhatsApp"),
    ],
)
def test_unusable_flags_are_usage_errors(flags: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        from_flags(*flags)


def test_data_options_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args([*PUBLISH, "--entity", "U", "--trigger", "T", "--data", "{}", "--sample"])
    assert exited.value.code == 2


def test_file_and_event_flags_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    code = main([*PUBLISH, "--file", "x.json", "--entity", "User", "--token", "t"])
    assert code == 2
    assert "--file and --entity" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Open>Resolved", (1, 2)),
        (">Resolved", (0, 2)),
        ("Resolved", (0, 2)),
        ("any->2", (0, 2)),
        ("1->Archive", (1, 14)),
        ({"from_status": 1, "to_status": "Resolved"}, (1, 2)),
        ({"to": 3}, (0, 3)),
    ],
)
def test_status_changes(text: object, expected: tuple[int, int]) -> None:
    change = parse_status_change(text)
    assert (change.from_status, change.to_status) == expected


# --- many events from a file ------------------------------------------------------------------

OBJECTS = [
    {
        "event_id": "e-1",
        "tenant": "acme",
        "entity": "Object",
        "trigger": "OnNew",
        "occurred_at": "2024-05-01T09:30:00Z",
        "channel": "WhatsApp",
        "subchannel": "12",
        "data": {"Id": 1},
    },
    {
        "event_id": "e-2",
        "entity": "Object",
        "trigger": "OnNewActivity",
        "activity_type": 2,
        "status_change": {"from_status": "Open", "to_status": 2},
        "data": {},
    },
    {"entity": "WhatsApp", "trigger": "OnMessageStatus", "whatsapp_channel": "w",
     "whatsapp_status": "sent"},
]  # fmt: skip


def test_a_json_array_and_json_lines_read_the_same(tmp_path: Path) -> None:
    array = tmp_path / "events.json"
    array.write_text(json.dumps(OBJECTS, indent=2))
    lines = tmp_path / "events.jsonl"
    lines.write_text("\n".join(json.dumps(o) for o in OBJECTS) + "\n\n")
    from_array = read_events_file(str(array), now=NOW)
    from_lines = read_events_file(str(lines), now=NOW)
    for events in (from_array, from_lines):
        assert [e.event_id for e in events[:2]] == ["e-1", "e-2"]
        assert events[2].event_id  # generated
        assert (events[0].tenant, events[0].channel, events[0].subchannel) == ("acme", 7, "12")
        assert json.loads(events[0].data_json) == {"Id": 1}
        assert events[1].status_change == StatusChange(from_status=1, to_status=2)
        assert events[2].occurred_at.ToDatetime(tzinfo=UTC) == NOW
    assert from_array[:2] == from_lines[:2]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no events"),
        ("[1, 2]", "event 1: expected an event object"),
        ("[{", "not valid JSON"),
        ('{"entity": "User"}\n{oops\n', "line 2: not valid JSON"),
        ('{"entity": "User"}\n\n[3]\n', "line 3: expected an event object"),
    ],
)
def test_unreadable_files_name_the_place(text: str, message: str) -> None:
    with pytest.raises(EventSyntaxError, match=message):
        parse_events_text(text)


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"entity": "User", "colour": "red"}, "unknown field 'colour'"),
        ({"entity": "User", "data": [1]}, "data: must be a JSON object"),
        ({"entity": 3}, "entity: expected a string"),
        ({"channel": True}, "channel: expected an id or a name"),
        ({"channel": "Pigeon"}, "channel: unknown channel"),
        ({"activity_type": "Dance"}, "activity_type"),
        ({"status_change": 5}, "status_change"),
        ({"occurred_at": "2024-05-01T09:30:00"}, "occurred_at: .*time zone"),
    ],
)
def test_bad_event_objects(obj: dict[str, object], message: str) -> None:
    with pytest.raises(EventSyntaxError, match=message):
        build_event(obj, now=NOW)


def test_a_bad_object_in_a_file_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"entity": "User"}\n\n{"entity": "User", "bogus": 1}\n')
    with pytest.raises(UsageError, match=r"events.jsonl: line 3: unknown field 'bogus'"):
        read_events_file(str(path))
    with pytest.raises(UsageError, match="No such file"):
        read_events_file(str(tmp_path / "missing.json"))


def test_batches_are_bounded_by_count_and_bytes() -> None:
    small = [build_event({"event_id": f"e{i}"}, now=NOW) for i in range(2500)]
    assert [len(b) for b in batches(small, 1000, 4 * 1024 * 1024)] == [1000, 1000, 500]
    big = [build_event({"data": {"x": "y" * 100_000}}, now=NOW) for _ in range(5)]
    sizes = [len(b) for b in batches(big, 1000, 250_000)]
    assert sizes == [2, 2, 1]
    assert [e for b in batches(small, 7, 10**9) for e in b] == small


# --- replay -----------------------------------------------------------------------------------


def test_the_replay_window() -> None:
    assert window("2h", "30m", NOW) == (NOW - timedelta(hours=2), NOW - timedelta(minutes=30))
    assert window("2024-05-01T00:00:00Z", "now", NOW) == (datetime(2024, 5, 1, tzinfo=UTC), NOW)
    with pytest.raises(UsageError, match="must be after"):
        window("30m", "2h", NOW)
    with pytest.raises(UsageError, match="--since"):
        window("last tuesday", "now", NOW)


def test_replay_requires_since(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["replay", "sub-1"])
    args = parse_args(["replay", "sub-1", "--since", "2h", "--dry-run", "--json"])
    assert (args.subscription_id, args.until, args.dry_run, args.json) == (
        "sub-1",
        "now",
        True,
        True,
    )


def progress(reached: datetime | None, done: bool = False) -> ReplayProgress:
    p = ReplayProgress(replay_id="r", scanned_events=10, matched_events=4, published_jobs=4)
    if reached is not None:
        p.reached.FromDatetime(reached)
    p.done = done
    return p


def test_progress_is_the_share_of_the_window_read() -> None:
    since, until = NOW - timedelta(hours=2), NOW
    assert fraction_done(progress(None), since, until) == 0.0
    assert fraction_done(progress(NOW - timedelta(hours=1)), since, until) == 0.5
    assert fraction_done(progress(NOW + timedelta(hours=1)), since, until) == 1.0
    assert fraction_done(progress(None, done=True), since, until) == 1.0
    bar = progress_bar(progress(NOW - timedelta(hours=1)), since, until, dry_run=False)
    assert bar.startswith("[" + "#" * 15 + "-" * 15 + "]  50%")
    assert "published 4" in bar
    assert "published" not in progress_bar(progress(None), since, until, dry_run=True)


def test_progress_on_a_terminal_redraws_one_line_and_plain_lines_otherwise() -> None:
    since, until = NOW - timedelta(hours=2), NOW
    tty = io.StringIO()
    view = ProgressView(tty, since, until, dry_run=False, tty=True)
    view.show(progress(NOW - timedelta(hours=1)))
    view.show(progress(None, done=True))
    view.close()
    assert tty.getvalue().count("\r") == 2 and tty.getvalue().endswith(
        "100%  scanned 10, matched 4, published 4\n"
    )
    plain = io.StringIO()
    view = ProgressView(plain, since, until, dry_run=True, tty=False)
    for _ in range(5):
        view.show(progress(NOW - timedelta(hours=1)))
    view.show(progress(None, done=True))
    view.close()
    lines = plain.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in plain.getvalue()  # throttled, then the final one
    assert lines[0].startswith("replay: scanned 10, matched 4 (reached 2024-05-01 11:00:00Z)")


def test_router_commands_use_the_router_address(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBHOOKS_ROUTER_ADDR", "127.0.0.1:1")
    code = main(["replay", "sub-1", "--since", "2h", "--token", "t"])
    assert code == 1
    assert "router is not reachable at 127.0.0.1:1" in capsys.readouterr().err
    code = main([*PUBLISH, "--entity", "Tag", "--trigger", "OnAdd", "--token", "t",
                 "--address", "127.0.0.1:2"])  # fmt: skip
    assert code == 1
    assert "127.0.0.1:2" in capsys.readouterr().err
