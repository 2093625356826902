"""Polling a condition until it holds, for tests that wait on other processes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    timeout: float = 30.0,  # noqa: ASYNC109 - a deadline for a condition, not a call
    what: str = "condition",
) -> T:
    """The first value of ``probe()`` that is ``done``; fails with the last one seen."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout} s; last: {value!r}")
        await asyncio.sleep(0.2)


def wait_until(probe: Callable[[], T], done: Callable[[T], bool], what: str, timeout: float) -> T:
    """The blocking ``eventually``, for tests that drive the CLI."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"{what} not reached; last: {value!r}"
        time.sleep(0.3)
