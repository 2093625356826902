"""A real DNS server on loopback for the outbound guard's tests (dnslib, UDP and TCP).

``DnsServer({"name.test": ["203.0.113.7", "2001:db8::7"]})`` answers A queries with the
IPv4 addresses of a name and AAAA queries with its IPv6 ones; a name it does not know is
NXDOMAIN, a known name without addresses of the asked type is an empty NOERROR answer, and
a name in ``servfail`` gets SERVFAIL. ``records`` may be changed while it runs. Point the
guard at ``server.address`` (``127.0.0.1:<port>``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from dnslib import AAAA, QTYPE, RCODE, RR, A
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from tests.support.ports import free_port


class _TableResolver(BaseResolver):  # type: ignore[misc]
    def __init__(self, server: DnsServer) -> None:
        self._server = server

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        self._server.queries.append((name, QTYPE[request.q.qtype]))
        if name in self._server.servfail:
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        addresses = self._server.records.get(name)
        if addresses is None:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for text in addresses:
            address = ipaddress.ip_address(text)
            if request.q.qtype == QTYPE.A and address.version == 4:
                reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(text), ttl=1))
            elif request.q.qtype == QTYPE.AAAA and address.version == 6:
                reply.add_answer(
                    RR(request.q.qname, QTYPE.AAAA, rdata=AAAA(tuple(address.packed)), ttl=1)
                )
        return reply


class DnsServer:
    def __init__(
        self, records: Mapping[str, Sequence[str]], *, servfail: Iterable[str] = ()
    ) -> None:
        self.records: dict[str, list[str]] = {k.lower(): list(v) for k, v in records.items()}
        self.servfail = {name.lower() for name in servfail}
        self.queries: list[tuple[str, str]] = []  # (name, record type) as asked
        self.port = free_port()
        self._servers: list[Any] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> DnsServer:
        resolver = _TableResolver(self)
        quiet = DNSLogger(logf=lambda _line: None)
        for tcp in (False, True):
            server = DNSServer(resolver, address="127.0.0.1", port=self.port, tcp=tcp, logger=quiet)
            server.start_thread()
            self._servers.append(server)
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.stop()
            server.server.server_close()
        self._servers.clear()

    def __enter__(self) -> DnsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
