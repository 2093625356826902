"""The restart policy of ``webhooks up`` (webhooks_cli.supervision): the doubling delays with
their ceiling, the reset after a child stayed up, and the crash-loop rule."""

from __future__ import annotations

import pytest

from webhooks_cli.supervision import (
    CRASH_LOOP_EXITS,
    CRASH_LOOP_WINDOW_SECONDS,
    FIRST_DELAY_SECONDS,
    MAX_DELAY_SECONDS,
    STABLE_AFTER_SECONDS,
    RestartHistory,
    crash_loop_reason,
    restart_delay,
)


def test_delays_double_from_the_first_up_to_the_ceiling() -> None:
    delays = [restart_delay(n) for n in range(1, 10)]
    assert delays[:4] == [0.5, 1.0, 2.0, 4.0]
    assert delays[0] == FIRST_DELAY_SECONDS
    assert max(delays) == MAX_DELAY_SECONDS
    assert delays == sorted(delays)
    assert delays[-1] == MAX_DELAY_SECONDS


def test_there_is_no_delay_before_any_exit() -> None:
    with pytest.raises(ValueError):
        restart_delay(0)


def test_quick_exits_back_off_then_crash_loop() -> None:
    history = RestartHistory()
    now, delays = 0.0, []
    for _ in range(CRASH_LOOP_EXITS - 1):
        delay = history.exited(started_at=now, exited_at=now + 1.0)
        assert delay is not None
        delays.append(delay)
        now += 1.0 + delay
    assert delays == [restart_delay(n) for n in range(1, CRASH_LOOP_EXITS)]
    assert now < CRASH_LOOP_WINDOW_SECONDS  # the rule is reachable with these delays
    assert history.exited(started_at=now, exited_at=now + 1.0) is None


def test_a_child_that_stayed_up_starts_again_from_the_first_delay() -> None:
    history = RestartHistory()
    assert history.exited(0.0, 1.0) == FIRST_DELAY_SECONDS
    assert history.exited(1.5, 2.0) == 2 * FIRST_DELAY_SECONDS
    started = 3.0
    assert history.exited(started, started + STABLE_AFTER_SECONDS) == FIRST_DELAY_SECONDS


def test_exits_spread_over_more_than_the_window_never_crash_loop() -> None:
    history = RestartHistory()
    spacing = CRASH_LOOP_WINDOW_SECONDS / (CRASH_LOOP_EXITS - 1) + 1.0
    for n in range(3 * CRASH_LOOP_EXITS):
        assert history.exited(n * spacing - 1.0, n * spacing) is not None


def test_the_reason_names_the_child_the_rule_and_the_last_exit() -> None:
    reason = crash_loop_reason("router", "with code 1")
    assert reason.startswith("router crash-loops")
    assert f"{CRASH_LOOP_EXITS} times" in reason and "with code 1" in reason
