"""Running one service: the grpc.aio server, health, reflection, background tasks, shutdown.

Shutdown order matters: report NOT_SERVING so balancers stop sending, stop accepting and let
in-flight RPCs finish, then stop the background consumers, then close their connections
(``on_shutdown``), then close the metrics endpoint and flush the spans of all of it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]
from grpc_reflection.v1alpha import reflection
from opentelemetry.instrumentation.grpc import aio_server_interceptor

from webhooks_config import Settings
from webhooks_grpc.auth import AuthInterceptor
from webhooks_grpc.boundary import BoundaryInterceptor
from webhooks_grpc.signals import unwatch_signals, watch_signals
from webhooks_telemetry import flush_tracing, setup_logging, setup_tracing
from webhooks_telemetry.metrics import setup_metrics

SHUTDOWN_GRACE_SECONDS = 5.0  # in-flight RPCs get this long to finish
BACKGROUND_GRACE_SECONDS = 10.0  # background tasks get this long after the stop event

Register = Callable[[grpc.aio.Server], Sequence[str]]
Background = Callable[[asyncio.Event], Awaitable[None]]

HEALTH_PREFIX = f"/{health.SERVICE_NAME}/"

log = logging.getLogger(__name__)


def _host(address: str) -> str:
    host, _, _ = address.rpartition(":")
    return host or address


def _traced(call_details: Any) -> bool:
    """Health checks are not traced (they are frequent and say nothing about an event).

    The library's own ``filters.health_check()`` does isinstance checks against typing
    protocols that cost a quarter of a millisecond per call; the method name suffices.
    """
    method = getattr(call_details, "method", "")
    if isinstance(method, bytes):
        method = method.decode()
    return not str(method).startswith(HEALTH_PREFIX)


def build_server(name: str, settings: Settings) -> grpc.aio.Server:
    """A grpc.aio server with tracing (outermost, so refusals are traced), then auth (an
    unauthenticated caller learns nothing about its request), then the boundary (bodies
    that do not decode, exceptions a handler let through: never UNKNOWN)."""
    provider = setup_tracing(name, settings)
    tracing = aio_server_interceptor(  # type: ignore[no-untyped-call]
        tracer_provider=provider, filter_=_traced
    )
    size = settings.grpc_max_message_bytes
    return grpc.aio.server(
        interceptors=[tracing, AuthInterceptor.from_settings(settings), BoundaryInterceptor()],
        options=[
            ("grpc.max_receive_message_length", size),
            ("grpc.max_send_message_length", size),
        ],
    )


async def run_service(
    name: str,
    settings: Settings,
    register: Register,
    *,
    background: Sequence[Background] = (),
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
    ready: Callable[[int], None] | None = None,
    stop: asyncio.Event | None = None,
    grace_seconds: float = SHUTDOWN_GRACE_SECONDS,
) -> None:
    """Serve ``name`` until SIGTERM/SIGINT or ``stop`` is set, then shut down gracefully.

    ``register`` adds the servicers and returns their full service names; ``ready`` gets
    the bound port (useful with port 0); each ``background`` task gets the stop event and
    must return soon after it is set.
    """
    setup_logging(settings)
    stop = stop if stop is not None else asyncio.Event()
    server = build_server(name, settings)
    health_servicer = await _serving(server, list(register(server)))
    address = settings.address(name)
    port = server.add_insecure_port(address)
    if port == 0:
        raise RuntimeError(f"{name}: cannot listen on {address}")
    tasks: list[asyncio.Task[None]] = []
    # Before the first RPC, so nothing the service counts is lost (its instruments record
    # into the provider made here).
    metrics = setup_metrics(name, settings)
    watch_signals(stop)
    stopped = False
    try:
        await server.start()
        log.info("%s listening on %s:%d", name, _host(address), port)
        if ready is not None:
            ready(port)
        for job in background:
            task = asyncio.create_task(_run_background(job, stop), name=f"{name}-background")
            tasks.append(task)
        await stop.wait()
        log.info("%s shutting down", name)
        await health_servicer.enter_graceful_shutdown()
        await server.stop(grace=grace_seconds)
        stopped = True
        await _finish(tasks)
        if on_shutdown is not None:
            await on_shutdown()
    finally:
        unwatch_signals(stop)
        stop.set()
        if not stopped:  # start-up failed or we were cancelled
            await server.stop(grace=None)
            for task in tasks:
                task.cancel()
        if metrics is not None:
            metrics.stop()
        flush_tracing()
        log.info("%s stopped", name)


async def _serving(server: grpc.aio.Server, services: list[str]) -> Any:
    """Health (every service SERVING) and reflection beside ``services``; the health
    servicer, which the shutdown turns NOT_SERVING."""
    health_servicer = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for service in ("", *services):
        await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        [*services, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    return health_servicer


async def _run_background(job: Background, stop: asyncio.Event) -> None:
    try:
        await job(stop)
    except asyncio.CancelledError:
        raise
    except Exception:
        # A dead consumer makes the service useless: stop it so a supervisor restarts it.
        log.exception("background task failed: stopping the service")
        stop.set()


async def _finish(tasks: list[asyncio.Task[None]]) -> None:
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=BACKGROUND_GRACE_SECONDS)
    for task in pending:
        log.warning("background task %s did not stop in time: cancelling", task.get_name())
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
