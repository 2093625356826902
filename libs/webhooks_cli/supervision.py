"""When ``webhooks up`` restarts a child that exited, and when it gives up: the restart
policy alone, without processes or clocks (the caller passes the times), so it is tested
in memory. The process handling is in ``webhooks_cli.up``."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

# The first restart is quick, so a one-off crash (a kill, an out-of-memory) costs publishers
# well under a second; each further exit in a row doubles the wait, up to a ceiling short
# enough that a child whose cause went away (NATS back, a port freed) is soon back too.
FIRST_DELAY_SECONDS = 0.5
MAX_DELAY_SECONDS = 10.0
# A child that stayed up this long was healthy: its next exit starts from the first delay.
STABLE_AFTER_SECONDS = 30.0
# A child that exits this often within the window fails at start (a port taken, a setting
# it rejects): restarting it again would only hide the cause, so ``up`` stops and says so.
# With the doubling delays, five quick exits take about 7.5 s plus their start-up times, so
# a crash loop is reported within seconds, while a child killed now and then never is.
CRASH_LOOP_EXITS = 5
CRASH_LOOP_WINDOW_SECONDS = 60.0


def restart_delay(exits_in_a_row: int) -> float:
    """Seconds to wait before restarting after the ``exits_in_a_row``-th exit in a row."""
    if exits_in_a_row < 1:
        raise ValueError("restart_delay is for the first exit on")
    return min(FIRST_DELAY_SECONDS * 2.0 ** (exits_in_a_row - 1), MAX_DELAY_SECONDS)


@dataclass
class RestartHistory:
    """One child's exits: how long to wait before its next start, and whether it crash-loops.
    Times are seconds on a monotonic clock."""

    exits: deque[float] = field(default_factory=deque)  # within the crash-loop window
    in_a_row: int = 0  # exits since the child last stayed up STABLE_AFTER_SECONDS

    def exited(self, started_at: float, exited_at: float) -> float | None:
        """Record an exit of a child started at ``started_at``: the delay before restarting
        it, or None when it crash-loops (CRASH_LOOP_EXITS exits within the window)."""
        if exited_at - started_at >= STABLE_AFTER_SECONDS:
            self.in_a_row = 0
        self.in_a_row += 1
        self.exits.append(exited_at)
        while self.exits and exited_at - self.exits[0] > CRASH_LOOP_WINDOW_SECONDS:
            self.exits.popleft()
        if len(self.exits) >= CRASH_LOOP_EXITS:
            return None
        return restart_delay(self.in_a_row)


def crash_loop_reason(child: str, last_exit: str) -> str:
    """Why ``up`` gives up on ``child`` (``last_exit``: how it ended the last time)."""
    return (
        f"{child} crash-loops: it exited {CRASH_LOOP_EXITS} times within "
        f"{CRASH_LOOP_WINDOW_SECONDS:.0f} s (the last time {last_exit})"
    )
