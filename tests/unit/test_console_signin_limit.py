"""The console's sign-in limit (issue 11) in memory, on a clock the test moves: a burst of
``per_minute`` attempts, then one every ``60 / per_minute`` seconds, per client address
(an IPv6 client by its /64), in bounded memory however many addresses a client uses."""

from __future__ import annotations

import pytest

from webhooks_console.signin_limit import SignInLimiter, client_key
from webhooks_console.values import BadValue, date_time, whole_number


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_one_attempt_per_interval() -> None:
    clock = Clock()
    limiter = SignInLimiter(10, clock=clock)
    assert [limiter.attempt("192.0.2.1") for _ in range(10)] == [0] * 10
    assert limiter.attempt("192.0.2.1") == 6  # 60 / 10 seconds until the next one
    clock.now += 3
    assert limiter.attempt("192.0.2.1") == 3  # refused attempts do not count
    clock.now += 3
    assert limiter.attempt("192.0.2.1") == 0
    assert limiter.attempt("192.0.2.1") == 6
    assert limiter.attempt("192.0.2.2") == 0  # another address has its own
    clock.now += 3600
    assert [limiter.attempt("192.0.2.1") for _ in range(10)] == [0] * 10  # refilled, no more


def test_an_ipv6_client_is_its_64() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::9")
    assert client_key("2001:db8:1:2::1") != client_key("2001:db8:1:3::1")
    assert client_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert client_key("not an address") == "not an address"
    limiter = SignInLimiter(2, clock=Clock())
    assert [limiter.attempt(f"2001:db8::{n:x}") for n in range(3)] == [0, 0, 30]


def test_memory_is_bounded_whatever_the_number_of_addresses() -> None:
    clock = Clock()
    limiter = SignInLimiter(1, max_clients=100, clock=clock)
    for n in range(10_000):
        limiter.attempt(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}")
        assert len(limiter) <= 100
    # The most recent ones are remembered: still limited.
    assert limiter.attempt("10.0.39.15") == 60


@pytest.mark.parametrize("text", ["99999999999999999999", "-1", "²", "1e9", " ", "0x10"])
def test_a_number_out_of_bounds_or_not_ascii_digits_names_the_input(text: str) -> None:
    with pytest.raises(BadValue, match=r"^retry attempts: a whole number from 0 to 5$"):
        whole_number("retry attempts", text, 0, 5)


@pytest.mark.parametrize(
    "text", ["garbage", "2026-13-45T99:99", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59-14:00"]
)
def test_a_date_that_no_timestamp_holds_names_the_input(text: str) -> None:
    with pytest.raises(BadValue, match=r"^from: a date and time"):
        date_time("from", text)
