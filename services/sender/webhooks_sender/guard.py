"""The outbound guard: which destination addresses an outbound request may reach.

Every outbound request (webhooks, OAuth token URLs, WSDL fetches) names a host chosen by a
tenant, so without a guard a subscription could make the sender call the cloud metadata
service, a database on the private network or the sender's own admin ports (SSRF). The
guard resolves the host, vets every address and refuses the host if ANY address is refused:
a name that answers with a public and a private address cannot be used to slip through on
the second connection attempt. aiohttp gets the vetted addresses from ``resolver()``, so the
connection goes to exactly what was vetted (no second lookup that a DNS rebinding attack
could answer differently).

Refused: loopback, private (RFC 1918, IPv6 ULA), link-local (with cloud metadata), CGNAT,
multicast, broadcast, unspecified, reserved, benchmarking and documentation ranges, and the
IPv6 forms that carry such an IPv4 address (IPv4-mapped, NAT64, 6to4, Teredo). The operator
allow-list (``WEBHOOKS_OUTBOUND_ALLOW``, CIDR networks) admits addresses anyway; tests admit
loopback that way.

Resolution fails closed: an error, a timeout or an empty answer is a ``DnsFailure``, never
a fallback to something unvetted.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.resolver
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

IPAddress = IPv4Address | IPv6Address

DEFAULT_DNS_TIMEOUT_SECONDS = 5.0


class BlockedDestination(Exception):
    """The destination resolves to an address the guard refuses."""

    def __init__(self, host: str, address: str, reason: str) -> None:
        self.host = host
        self.address = address
        self.reason = reason
        target = address if host == address else f"{address} for {host}"
        super().__init__(f"refused destination {target} ({reason})")


class DnsFailure(Exception):
    """The host could not be resolved to any address (error, timeout or empty answer)."""

    def __init__(self, host: str, detail: str) -> None:
        self.host = host
        self.detail = detail
        super().__init__(f"could not resolve {host}: {detail}")


# Cloud metadata services. They are reachable from inside an instance and hand out
# credentials, so they get their own reason. Azure's wire server sits in public space, so no
# range check would catch it.
_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, ...
        "169.254.170.2",  # AWS ECS task metadata
        "168.63.129.16",  # Azure wire server
        "100.100.100.200",  # Alibaba Cloud
        "fd00:ec2::254",  # AWS over IPv6
    )
)


def _networks(*cidrs: str) -> tuple[IPv4Network | IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


# Ranges named explicitly, where the stdlib's properties are too coarse (is_private mixes
# RFC 1918 with documentation and benchmarking ranges) or wrong on this Python (3.11 calls
# 3fff::/20 and 64:ff9b:1::/48 global). Checked in order; the first match gives the reason.
_V4_RANGES: tuple[tuple[str, tuple[IPv4Network | IPv6Network, ...]], ...] = (
    ("unspecified", _networks("0.0.0.0/8")),  # "this network": 0.0.0.0 reaches the host
    ("cgnat", _networks("100.64.0.0/10")),
    ("private", _networks("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")),
    ("broadcast", _networks("255.255.255.255/32")),
    ("benchmarking", _networks("198.18.0.0/15")),
    ("documentation", _networks("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")),
)
_V6_RANGES: tuple[tuple[str, tuple[IPv4Network | IPv6Network, ...]], ...] = (
    ("private", _networks("fc00::/7")),  # unique local addresses
    ("documentation", _networks("2001:db8::/32", "3fff::/20")),
    ("benchmarking", _networks("2001:2::/48")),
)
_NAT64_WELL_KNOWN = IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = IPv6Network("64:ff9b:1::/48")  # RFC 8215, never globally reachable


def _embedded_ipv4(ip: IPv6Address) -> list[IPv4Address]:
    """The IPv4 addresses an IPv6 address leads to (mapped, NAT64, 6to4, Teredo)."""
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip in _NAT64_WELL_KNOWN or ip in _NAT64_LOCAL:
        # The local-use prefix may embed at other offsets; the /96 layout is the common one
        # and the whole prefix is refused anyway when this address passes.
        return [IPv4Address(int(ip) & 0xFFFFFFFF)]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        server, client = ip.teredo
        return [client, server]
    return []


def _refusal_v4(ip: IPv4Address) -> str | None:
    if ip in _METADATA:
        return "metadata"
    for reason, networks in _V4_RANGES:
        if any(ip in n for n in networks):
            return reason
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_reserved:
        return "reserved"
    # Whatever else IANA marks as not globally reachable (192.0.0.0/24 protocol
    # assignments and the like).
    if not ip.is_global:
        return "reserved"
    return None


def _refusal_v6(ip: IPv6Address) -> str | None:
    if ip.scope_id is not None:
        ip = IPv6Address(int(ip))  # fe80::1%eth0: the zone says nothing about the range
    if ip in _METADATA:
        return "metadata"
    embedded = _embedded_ipv4(ip)
    for address in embedded:
        reason = _refusal_v4(address)
        if reason is not None:
            return reason
    if ip in _NAT64_LOCAL:
        return "private"
    if embedded and (ip.ipv4_mapped is not None or ip in _NAT64_WELL_KNOWN):
        # These lead to exactly the embedded public address; the ::/8 they sit in is
        # "reserved" for the stdlib, which must not refuse them.
        return None
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_site_local:
        return "site-local"
    for reason, networks in _V6_RANGES:
        if any(ip in n for n in networks):
            return reason
    if ip.is_multicast:
        return "multicast"
    if ip.is_reserved or not ip.is_global:
        # ::/8 (IPv4-compatible, discard 100::/64), 2001::/23 (Teredo with public ends)...
        return "reserved"
    return None


def _parse_nameserver(entry: str) -> dns.nameserver.Do53Nameserver:
    """``host`` or ``host:port``; IPv6 as ``[addr]:port`` or bare."""
    host, port = entry.strip(), 53
    if host.startswith("["):
        host, _, rest = host[1:].partition("]")
        if rest.startswith(":"):
            port = int(rest[1:])
    elif host.count(":") == 1:
        host, _, port_text = host.partition(":")
        port = int(port_text)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"DNS server must be an IP address, got {entry!r}") from None
    return dns.nameserver.Do53Nameserver(host, port)


class OutboundGuard:
    def __init__(
        self,
        allow: Sequence[str] = (),
        dns_servers: Sequence[str] = (),
        *,
        dns_timeout: float = DEFAULT_DNS_TIMEOUT_SECONDS,
    ) -> None:
        self.allow = tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in allow)
        self.dns_timeout = dns_timeout
        self._dns: dns.asyncresolver.Resolver | None = None
        if dns_servers:
            self._dns = dns.asyncresolver.Resolver(configure=False)
            self._dns.nameservers = [_parse_nameserver(s) for s in dns_servers]
            self._dns.lifetime = dns_timeout

    def refusal(self, ip: str | IPAddress) -> str | None:
        """Why ``ip`` is refused, or None when a connection to it is allowed."""
        address = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
        if self._allowed(address):
            return None
        if isinstance(address, IPv4Address):
            return _refusal_v4(address)
        return _refusal_v6(address)

    def _allowed(self, address: IPAddress) -> bool:
        candidates: list[IPAddress] = [address]
        if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
            # ::ffff:127.0.0.1 is 127.0.0.1 on a dual-stack socket.
            candidates.append(address.ipv4_mapped)
        return any(c in network for c in candidates for network in self.allow)

    def vet(self, host: str, address: str) -> None:
        """Raise ``BlockedDestination`` when ``address`` (of ``host``) is refused."""
        reason = self.refusal(address)
        if reason is not None:
            raise BlockedDestination(host, address, reason)

    async def resolve(self, host: str, port: int = 0) -> list[str]:
        """The vetted addresses of ``host``; refused if any of them is refused."""
        return [address for _family, address in await self._vetted(host, port, 0)]

    async def check_url(self, url: str | URL) -> None:
        """Resolve and vet the host of ``url`` (raises BlockedDestination, DnsFailure)."""
        parsed = URL(url) if isinstance(url, str) else url
        if not parsed.host:
            raise DnsFailure(str(parsed), "no host in URL")
        await self.resolve(parsed.host, parsed.port or 0)

    def resolver(self) -> AbstractResolver:
        """An aiohttp resolver that only ever hands vetted addresses to the connector."""
        return _GuardResolver(self)

    async def _vetted(self, host: str, port: int, family: int) -> list[tuple[int, str]]:
        literal = _ip_literal(host)
        if literal is not None:
            self.vet(host, str(literal))
            return [(socket.AF_INET if literal.version == 4 else socket.AF_INET6, str(literal))]
        found = await self._lookup(host, port, family)
        if not found:
            raise DnsFailure(host, "no address")
        for _family, address in found:
            self.vet(host, address)
        return found

    async def _lookup(self, host: str, port: int, family: int) -> list[tuple[int, str]]:
        try:
            async with asyncio.timeout(self.dns_timeout):
                if self._dns is not None:
                    return await self._lookup_dns(self._dns, host, family)
                return await self._lookup_system(host, port, family)
        except TimeoutError:
            raise DnsFailure(host, "timed out") from None

    async def _lookup_system(self, host: str, port: int, family: int) -> list[tuple[int, str]]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, family=family, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise DnsFailure(host, str(exc)) from None
        found: list[tuple[int, str]] = []
        for info_family, _type, _proto, _name, sockaddr in infos:
            entry = (int(info_family), str(sockaddr[0]))
            if info_family in (socket.AF_INET, socket.AF_INET6) and entry not in found:
                found.append(entry)
        return found

    async def _lookup_dns(
        self, resolver: dns.asyncresolver.Resolver, host: str, family: int
    ) -> list[tuple[int, str]]:
        wanted = [
            (record_type, record_family)
            for record_type, record_family in (("A", socket.AF_INET), ("AAAA", socket.AF_INET6))
            if family in (0, record_family)
        ]
        answers = await asyncio.gather(
            *(_query(resolver, host, record_type) for record_type, _ in wanted)
        )
        return [
            (record_family, address)
            for (_, record_family), addresses in zip(wanted, answers, strict=True)
            for address in addresses
        ]


async def _query(resolver: dns.asyncresolver.Resolver, host: str, record_type: str) -> list[str]:
    try:
        answer = await resolver.resolve(host, record_type, search=False)
    except dns.resolver.NoAnswer:
        return []  # the name exists without this record type: the other type may answer
    except dns.resolver.NXDOMAIN:
        raise DnsFailure(host, "no such domain") from None
    except dns.exception.Timeout:
        raise DnsFailure(host, "timed out") from None
    except dns.exception.DNSException as exc:
        # SERVFAIL, no reachable server, a malformed name: fail closed.
        raise DnsFailure(host, type(exc).__name__) from None
    return [record.to_text() for record in answer]


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


class _GuardResolver(AbstractResolver):
    """aiohttp's view of the guard: resolution that refuses what the guard refuses.

    aiohttp calls this only for names; IP-literal URLs bypass resolvers, which is why the
    transport vets those itself. ``BlockedDestination`` and ``DnsFailure`` are not OSErrors,
    so aiohttp lets them through unwrapped to the caller of the request.
    """

    def __init__(self, guard: OutboundGuard) -> None:
        self._guard = guard

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        vetted = await self._guard._vetted(host, port, int(family))
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=address_family,
                proto=socket.IPPROTO_TCP,
                flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
            )
            for address_family, address in vetted
        ]

    async def close(self) -> None:
        return None
