"""An HTTPS webhook receiver in a process of its own that logs when each delivery arrived.

For load tests and benchmarks where the receiver must not share an event loop (or a GIL)
with the load generator: a receiver busy with one tenant's burst would otherwise delay the
test's own measurements. Every request is answered 204 and logged as a line
``<time.time()> <webhook-id>`` in the log file (flushed every few milliseconds).

    async with ReceiptLog.run(pki, tmp / "a.log") as receiver:
        url = receiver.url("/hook")
        ...
        receiver.poll()            # what arrived since the last poll
        receiver.at[delivery_id]   # when it arrived (first time), time.time()

Run as a process: ``python -m tests.support.receipt_log CERT KEY LOG`` prints its port.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from tests.support.receivers import TestPki

FLUSH_SECONDS = 0.005
REPO = Path(__file__).resolve().parents[2]


@dataclass
class ReceiptLog:
    """The receiver process's log, read as it grows."""

    path: Path
    port: int
    at: dict[str, float] = field(default_factory=dict)  # delivery id -> first receipt
    received: int = 0  # requests, repeats included
    _offset: int = 0
    _rest: bytes = b""

    def url(self, path: str = "/hook") -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def poll(self) -> None:
        with self.path.open("rb") as log:
            log.seek(self._offset)
            data = log.read()
        self._offset += len(data)
        lines = (self._rest + data).split(b"\n")
        self._rest = lines.pop()
        for line in lines:
            stamp, _, delivery = line.decode().partition(" ")
            self.received += 1
            self.at.setdefault(delivery, float(stamp))

    async def wait(self, count: int, within: float) -> None:
        """Until ``count`` distinct deliveries have arrived (AssertionError after ``within``)."""
        deadline = time.monotonic() + within
        while True:
            self.poll()
            if len(self.at) >= count:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.at)} of {count} deliveries within {within} s")
            await asyncio.sleep(0.05)

    @classmethod
    @contextlib.asynccontextmanager
    async def run(cls, pki: TestPki, path: Path) -> AsyncIterator[ReceiptLog]:
        path.write_bytes(b"")  # noqa: ASYNC240 - an empty file, before anything runs
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.support.receipt_log",
            str(pki.server_cert_file),
            str(pki.server_key_file),
            str(path),
            stdout=asyncio.subprocess.PIPE,
            cwd=REPO,
        )
        try:
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), 30)
            yield cls(path, int(line))
        finally:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            await process.wait()


async def _serve(cert: str, key: str, log_path: str) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    with open(log_path, "ab") as log:  # noqa: ASYNC230 - appended from the loop, flushed below

        async def receive(request: web.Request) -> web.Response:
            await request.read()
            delivery = request.headers.get("webhook-id", "-")
            log.write(f"{time.time():.6f} {delivery}\n".encode())
            return web.Response(status=204)

        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", receive)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        server = site._server
        assert server is not None
        print(server.sockets[0].getsockname()[1], flush=True)  # type: ignore[attr-defined]
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            log.flush()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(*sys.argv[1:4]))
