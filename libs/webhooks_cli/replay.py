"""``webhooks replay``: route a window of past events again to one subscription
(ReplayEvents), showing progress as it streams (args_events.REPLAY_DESCRIPTION: its --help)."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from typing import TextIO

from webhooks.v1.router_pb2 import ReplayEventsRequest, ReplayProgress
from webhooks_cli.errors import CliError, UsageError
from webhooks_cli.output import print_json
from webhooks_cli.router_client import RouterClient
from webhooks_cli.times import TimeSyntaxError, parse_time
from webhooks_client.protos import timestamp, timestamp_text

BAR_WIDTH = 30
LINE_INTERVAL_SECONDS = 1.0


def window(since: str, until: str, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The (since, until) of the flags, both read against the same ``now``."""
    now = now or datetime.now(UTC)
    try:
        start = parse_time(since, now)
    except TimeSyntaxError as err:
        raise UsageError(f"--since: {err}") from None
    try:
        end = parse_time(until, now)
    except TimeSyntaxError as err:
        raise UsageError(f"--until: {err}") from None
    if end <= start:
        raise UsageError(f"--until ({end.isoformat()}) must be after --since ({start.isoformat()})")
    return start, end


def fraction_done(progress: ReplayProgress, since: datetime, until: datetime) -> float:
    """How far through the window's time span the replay has read (0..1)."""
    if progress.done:
        return 1.0
    if not progress.HasField("reached"):
        return 0.0
    reached = progress.reached.ToDatetime(tzinfo=UTC)
    span = (until - since).total_seconds()
    return min(1.0, max(0.0, (reached - since).total_seconds() / span)) if span > 0 else 0.0


def counts_text(progress: ReplayProgress, dry_run: bool) -> str:
    published = "" if dry_run else f", published {progress.published_jobs}"
    return f"scanned {progress.scanned_events}, matched {progress.matched_events}{published}"


def progress_bar(progress: ReplayProgress, since: datetime, until: datetime, dry_run: bool) -> str:
    done = fraction_done(progress, since, until)
    filled = round(done * BAR_WIDTH)
    bar = "#" * filled + "-" * (BAR_WIDTH - filled)
    return f"[{bar}] {done * 100:3.0f}%  {counts_text(progress, dry_run)}"


class ProgressView:
    """A bar rewritten in place on a terminal; otherwise a line at most once a second."""

    def __init__(
        self, out: TextIO, since: datetime, until: datetime, dry_run: bool, tty: bool
    ) -> None:
        self.out, self.since, self.until, self.dry_run, self.tty = out, since, until, dry_run, tty
        self._last_line = 0.0
        self._drawn = False

    def show(self, progress: ReplayProgress) -> None:
        if self.tty:
            line = progress_bar(progress, self.since, self.until, self.dry_run)
            self.out.write("\r" + line)
            self.out.flush()
            self._drawn = True
            return
        now = time.monotonic()
        if progress.done or now - self._last_line >= LINE_INTERVAL_SECONDS:
            self._last_line = now
            reached = timestamp_text(progress.reached)
            at = f" (reached {reached})" if reached else ""
            self.out.write(f"replay: {counts_text(progress, self.dry_run)}{at}\n")
            self.out.flush()

    def close(self) -> None:
        if self._drawn:
            self.out.write("\n")
            self.out.flush()
            self._drawn = False


def summary(progress: ReplayProgress, dry_run: bool) -> str:
    if dry_run:
        return (
            f"dry run {progress.replay_id}: {progress.matched_events} events would be "
            f"replayed (scanned {progress.scanned_events}); nothing was published"
        )
    return (
        f"replay {progress.replay_id}: {progress.published_jobs} jobs published for "
        f"{progress.matched_events} matching events (scanned {progress.scanned_events})"
    )


def replay(args: argparse.Namespace, client: RouterClient) -> int:
    since, until = window(args.since, args.until)
    request = ReplayEventsRequest(
        subscription_id=args.subscription_id,
        since=timestamp(since),
        until=timestamp(until),
        dry_run=args.dry_run,
    )
    view = ProgressView(sys.stderr, since, until, args.dry_run, tty=sys.stderr.isatty())
    final: ReplayProgress | None = None
    try:
        for progress in client.stream("ReplayEvents", request):
            view.show(progress)
            final = progress
    finally:
        view.close()
    if final is None or not final.done:
        raise CliError("the replay ended before it was done (the router stopped?)")
    if args.json:
        print_json(final)
    else:
        print(summary(final, args.dry_run))
    return 0
