"""What an RPC that must fail ends with, for tests of any folder that call a service."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import grpc.aio


async def rpc_error(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    """The error an RPC ends with (the test fails when it succeeds)."""
    try:
        result = await call
    except grpc.aio.AioRpcError as error:
        return error
    raise AssertionError(f"expected the RPC to fail, it returned {result!r}")
