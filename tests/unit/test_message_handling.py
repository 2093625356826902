"""The rule for a message whose handling failed (webhooks_messaging.handling): the broker's
and the network's errors are tried again for ever; any other is set aside once the message
has been delivered MAX_DELIVERIES times."""

from __future__ import annotations

import nats.errors
import nats.js.errors
import pytest

from webhooks_messaging.handling import MAX_DELIVERIES, describe, gives_up, is_transient

TRANSIENT = [
    nats.errors.TimeoutError(),
    nats.errors.ConnectionClosedError(),
    nats.errors.NoRespondersError(),
    nats.errors.OutboundBufferLimitError(),
    nats.js.errors.APIError(code=503, description="JetStream system temporarily unavailable"),
    nats.js.errors.BadRequestError(),
    nats.js.errors.NoStreamResponseError(),
    TimeoutError(),  # asyncio's too
    ConnectionResetError(),
    ConnectionRefusedError(),
    OSError("network is unreachable"),
]
NOT_TRANSIENT = [
    ValueError("a value the job building did not foresee"),
    KeyError("Score"),
    TypeError("unsupported operand"),
    RecursionError("maximum recursion depth exceeded"),
    UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"),
    RuntimeError("a bug"),
    AssertionError(),
]


@pytest.mark.parametrize("error", TRANSIENT, ids=lambda e: type(e).__name__)
def test_the_brokers_and_the_networks_errors_are_transient(error: BaseException) -> None:
    assert is_transient(error)


@pytest.mark.parametrize("error", NOT_TRANSIENT, ids=lambda e: type(e).__name__)
def test_any_other_error_is_not(error: BaseException) -> None:
    assert not is_transient(error)


@pytest.mark.parametrize("deliveries", [0, 1, 2, MAX_DELIVERIES - 1])
@pytest.mark.parametrize("error", TRANSIENT + NOT_TRANSIENT, ids=lambda e: type(e).__name__)
def test_before_the_last_delivery_every_failure_comes_back(
    error: BaseException, deliveries: int
) -> None:
    assert not gives_up(transient=is_transient(error), deliveries=deliveries)


@pytest.mark.parametrize("deliveries", [MAX_DELIVERIES, MAX_DELIVERIES + 1, 1000])
@pytest.mark.parametrize("error", NOT_TRANSIENT, ids=lambda e: type(e).__name__)
def test_from_the_last_delivery_on_a_failure_not_the_brokers_is_set_aside(
    error: BaseException, deliveries: int
) -> None:
    assert gives_up(transient=is_transient(error), deliveries=deliveries)


@pytest.mark.parametrize("deliveries", [MAX_DELIVERIES, MAX_DELIVERIES + 1, 10**6])
@pytest.mark.parametrize("error", TRANSIENT, ids=lambda e: type(e).__name__)
def test_a_transient_failure_is_never_set_aside(error: BaseException, deliveries: int) -> None:
    assert not gives_up(transient=is_transient(error), deliveries=deliveries)


def test_a_few_deliveries_not_one_and_not_unbounded() -> None:
    # One would set aside what a passing race broke; many would keep a poison message
    # looping (a consumer slot, a log line) for minutes.
    assert 2 <= MAX_DELIVERIES <= 10


def test_the_detail_names_the_error_type() -> None:
    assert describe(KeyError("Score")) == "KeyError: 'Score'"
    assert describe(nats.errors.TimeoutError()) == "TimeoutError: nats: timeout"
    assert describe(AssertionError()) == "AssertionError"
