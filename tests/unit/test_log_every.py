"""LogEvery: at most one line per kind and period, with how many were held back."""

from __future__ import annotations

import logging
import threading

import pytest

from webhooks_telemetry.logs import LogEvery


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_line_per_kind_and_minute_with_the_count_held_back() -> None:
    clock = Clock()
    every = LogEvery(60.0, clock=clock)
    assert every.due("a") == 0  # the first one is logged
    assert [every.due("a") for _ in range(99)] == [None] * 99
    assert every.due("b") == 0  # another kind has its own minute
    clock.now += 59.9
    assert every.due("a") is None
    clock.now += 0.1
    assert every.due("a") == 100  # the 99 and the one at 59.9 s
    assert every.due("a") is None
    clock.now += 600
    assert every.due("a") == 1
    assert every.due("b") == 0


def test_keys_are_any_hashable() -> None:
    clock = Clock()
    every = LogEvery(60.0, clock=clock)
    assert every.due(("/svc/Get", "undecodable")) == 0
    assert every.due(("/svc/Get", "broker")) == 0
    assert every.due(("/svc/List", "undecodable")) == 0
    assert every.due(("/svc/Get", "undecodable")) is None


def test_the_kinds_remembered_are_bounded() -> None:
    clock = Clock()
    every = LogEvery(60.0, clock=clock, max_keys=3)
    assert [every.due(k) for k in "abc"] == [0, 0, 0]
    assert every.due("d") is None  # a fourth kind within the minute: not logged
    assert len(every._logged_at) == 3
    clock.now += 60
    assert every.due("d") == 0  # the old kinds are forgotten once their minute is over
    assert len(every._logged_at) == 1


def test_threads_share_one_line() -> None:
    every = LogEvery(60.0)
    results: list[int | None] = []
    lock = threading.Lock()

    def hammer() -> None:
        mine = [every.due("k") for _ in range(1000)]
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r for r in results if r is not None] == [0]


def test_the_held_back_count_is_in_the_next_line(caplog: pytest.LogCaptureFixture) -> None:
    # As the gRPC boundary and DeadLetters use it: the line says how many it stands for.
    clock = Clock()
    every = LogEvery(60.0, clock=clock)
    logger = logging.getLogger("test.log_every")
    with caplog.at_level(logging.INFO, logger="test.log_every"):
        for _ in range(250):
            held = every.due(("/svc/Get", "undecodable"))
            if held is not None:
                logger.info("refused; %d more such calls since the last line", held)
            clock.now += 1.0
    assert [r.getMessage() for r in caplog.records] == [
        "refused; 0 more such calls since the last line",
        "refused; 59 more such calls since the last line",
        "refused; 59 more such calls since the last line",
        "refused; 59 more such calls since the last line",
        "refused; 59 more such calls since the last line",
    ]
