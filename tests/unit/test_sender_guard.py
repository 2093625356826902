"""The outbound guard: the refusal matrix, the allow-list, and resolution against a real DNS
server on loopback (and the system resolver for ``localhost``)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.support.dns import DnsServer
from tests.support.ports import free_port
from webhooks_sender.guard import BlockedDestination, DnsFailure, OutboundGuard

# (address, reason): every class the guard refuses, in IPv4, IPv6 and the IPv6 forms that
# lead to an IPv4 address.
REFUSED = [
    # IPv4
    ("127.0.0.1", "loopback"),
    ("127.255.0.9", "loopback"),
    ("10.0.0.5", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.168.1.1", "private"),
    ("169.254.0.1", "link-local"),
    ("169.254.169.254", "metadata"),
    ("169.254.170.2", "metadata"),
    ("168.63.129.16", "metadata"),
    ("100.100.100.200", "metadata"),
    ("100.64.0.1", "cgnat"),
    ("100.127.255.254", "cgnat"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("255.255.255.255", "broadcast"),
    ("240.0.0.1", "reserved"),
    ("192.0.0.1", "reserved"),
    ("198.18.0.1", "benchmarking"),
    ("198.19.255.254", "benchmarking"),
    ("192.0.2.1", "documentation"),
    ("198.51.100.1", "documentation"),
    ("203.0.113.1", "documentation"),
    # IPv6
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fe80::1", "link-local"),
    ("fe80::1%1", "link-local"),
    ("fec0::1", "site-local"),
    ("fc00::1", "private"),
    ("fd12:3456::1", "private"),
    ("fd00:ec2::254", "metadata"),
    ("ff02::1", "multicast"),
    ("ff0e::1", "multicast"),
    ("2001:db8::1", "documentation"),
    ("3fff::1", "documentation"),
    ("2001:2::1", "benchmarking"),
    ("100::1", "reserved"),  # discard-only
    ("::7f00:1", "reserved"),  # IPv4-compatible (deprecated) ::127.0.0.1
    # IPv4-mapped
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:10.0.0.5", "private"),
    ("::ffff:169.254.169.254", "metadata"),
    ("::ffff:100.64.0.1", "cgnat"),
    ("::ffff:0.0.0.0", "unspecified"),
    # NAT64, well-known prefix and local-use prefix
    ("64:ff9b::127.0.0.1", "loopback"),
    ("64:ff9b::10.0.0.5", "private"),
    ("64:ff9b::169.254.169.254", "metadata"),
    ("64:ff9b::192.168.0.1", "private"),
    ("64:ff9b:1::10.0.0.5", "private"),
    ("64:ff9b:1::8.8.8.8", "private"),  # the local-use prefix is never global
    # 6to4: 2002:AABB:CCDD::/48 carries AA.BB.CC.DD
    ("2002:7f00:1::1", "loopback"),
    ("2002:a00:5::1", "private"),
    ("2002:a9fe:a9fe::1", "metadata"),
    ("2002:6440:1::1", "cgnat"),
    # Teredo: 2001:0:<server>:<flags>:<port ^ ffff>:<client ^ ffffffff>
    ("2001:0:4136:e378:8000:63bf:f5ff:fffa", "private"),  # client 10.0.0.5
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback"),  # client 127.0.0.1
    ("2001:0:4136:e378:8000:63bf:5601:5601", "metadata"),  # client 169.254.169.254
    ("2001:0:a00:5:8000:63bf:f7f7:f7f7", "private"),  # server 10.0.0.5
]

ALLOWED = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.215.14",
    "100.63.255.255",  # just below CGNAT
    "100.128.0.0",  # just above CGNAT
    "172.15.255.255",  # just below 172.16/12
    "172.32.0.0",  # just above
    "192.0.0.9",  # PCP anycast: globally reachable in 192.0.0.0/24
    "2001:4860:4860::8888",
    "2606:4700:4700::1111",
    "::ffff:8.8.8.8",  # IPv4-mapped public address
    "64:ff9b::8.8.8.8",  # NAT64 of a public address
    "2002:808:808::1",  # 6to4 of a public address
]


@pytest.mark.parametrize(("address", "reason"), REFUSED)
def test_refused_addresses_and_their_reason(address: str, reason: str) -> None:
    assert OutboundGuard().refusal(address) == reason


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed(address: str) -> None:
    assert OutboundGuard().refusal(address) is None


@pytest.mark.parametrize(("address", "reason"), REFUSED)
def test_the_allow_list_admits_every_class_it_names(address: str, reason: str) -> None:
    assert OutboundGuard(allow=["0.0.0.0/0", "::/0"]).refusal(address) is None


ALLOW = ["127.0.0.0/8", "::1/128", "10.1.0.0/16"]


@pytest.mark.parametrize(
    ("address", "admitted"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),  # the same address on a dual-stack socket
        ("10.1.2.3", True),
        ("10.2.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("fd00::1", False),
        ("64:ff9b::127.0.0.1", False),  # reaches a NAT64 gateway's loopback, not ours
    ],
)
def test_allow_list_admits_only_its_networks(address: str, admitted: bool) -> None:
    guard = OutboundGuard(allow=ALLOW)
    assert (guard.refusal(address) is None) is admitted
    assert OutboundGuard().refusal(address) is not None  # refused without the list


def test_blocked_destination_names_host_address_and_reason() -> None:
    error = BlockedDestination("internal.example", "10.0.0.5", "private")
    assert (error.host, error.address, error.reason) == ("internal.example", "10.0.0.5", "private")
    assert str(error) == "refused destination 10.0.0.5 for internal.example (private)"


async def test_ip_literals_are_vetted_without_dns() -> None:
    guard = OutboundGuard(dns_servers=[f"127.0.0.1:{free_port()}"], dns_timeout=0.5)
    assert await guard.resolve("8.8.8.8", 443) == ["8.8.8.8"]
    assert await guard.resolve("[2606:4700:4700::1111]", 443) == ["2606:4700:4700::1111"]
    with pytest.raises(BlockedDestination) as refused:
        await guard.resolve("169.254.169.254", 80)
    assert refused.value.reason == "metadata"


# ---- resolution against a real DNS server on loopback


@pytest.fixture(scope="module")
def dns_server() -> Iterator[DnsServer]:
    records = {
        "public.test": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
        "public-v4.test": ["93.184.215.14"],
        "mixed.test": ["93.184.215.14", "10.0.0.5"],
        "mixed-v6.test": ["93.184.215.14", "fd00::5"],
        "private.test": ["10.0.0.5"],
        "metadata.test": ["169.254.169.254"],
        "mapped.test": ["::ffff:127.0.0.1"],
        "empty.test": [],
    }
    with DnsServer(records, servfail=["broken.test"]) as server:
        yield server


def _guard(server: DnsServer, *allow: str) -> OutboundGuard:
    return OutboundGuard(allow=allow, dns_servers=[server.address], dns_timeout=2.0)


async def test_public_name_resolves_to_all_its_addresses(dns_server: DnsServer) -> None:
    addresses = await _guard(dns_server).resolve("public.test", 443)
    assert sorted(addresses) == ["2606:2800:21f:cb07:6820:80da:af6b:8b2c", "93.184.215.14"]
    assert await _guard(dns_server).resolve("public-v4.test", 443) == ["93.184.215.14"]


@pytest.mark.parametrize(
    ("host", "address", "reason"),
    [
        ("mixed.test", "10.0.0.5", "private"),
        ("mixed-v6.test", "fd00::5", "private"),
        ("private.test", "10.0.0.5", "private"),
        ("metadata.test", "169.254.169.254", "metadata"),
        ("mapped.test", "::ffff:127.0.0.1", "loopback"),
    ],
)
async def test_a_name_with_any_refused_address_is_refused(
    dns_server: DnsServer, host: str, address: str, reason: str
) -> None:
    with pytest.raises(BlockedDestination) as refused:
        await _guard(dns_server).resolve(host, 443)
    assert (refused.value.host, refused.value.address, refused.value.reason) == (
        host,
        address,
        reason,
    )


async def test_allow_list_admits_a_private_name(dns_server: DnsServer) -> None:
    assert await _guard(dns_server, "10.0.0.0/24").resolve("private.test", 443) == ["10.0.0.5"]
    with pytest.raises(BlockedDestination):
        await _guard(dns_server, "10.9.0.0/16").resolve("private.test", 443)


@pytest.mark.parametrize("host", ["missing.test", "empty.test", "broken.test"])
async def test_no_usable_answer_fails_closed(dns_server: DnsServer, host: str) -> None:
    with pytest.raises(DnsFailure) as failed:
        await _guard(dns_server).resolve(host, 443)
    assert failed.value.host == host


async def test_unreachable_dns_server_fails_closed() -> None:
    guard = OutboundGuard(dns_servers=[f"127.0.0.1:{free_port()}"], dns_timeout=0.5)
    with pytest.raises(DnsFailure):
        await guard.resolve("public.test", 443)


async def test_check_url_vets_the_url_host(dns_server: DnsServer) -> None:
    guard = _guard(dns_server)
    await guard.check_url("https://public.test/hook?x=1")
    with pytest.raises(BlockedDestination):
        await guard.check_url("https://mixed.test:8443/hook")
    with pytest.raises(BlockedDestination):
        await guard.check_url("http://[::ffff:10.0.0.5]/")


async def test_aiohttp_resolver_hands_over_only_vetted_addresses(dns_server: DnsServer) -> None:
    resolver = _guard(dns_server).resolver()
    results = await resolver.resolve("public.test", 443, family=socket.AF_INET)
    assert [(r["host"], r["port"], r["family"]) for r in results] == [
        ("93.184.215.14", 443, socket.AF_INET)
    ]
    with pytest.raises(BlockedDestination):
        await resolver.resolve("mixed.test", 443, family=socket.AF_UNSPEC)
    with pytest.raises(DnsFailure):
        await resolver.resolve("missing.test", 443, family=socket.AF_UNSPEC)


async def test_system_resolver_is_guarded_too() -> None:
    with pytest.raises(BlockedDestination) as refused:
        await OutboundGuard().resolve("localhost", 443)
    assert refused.value.reason == "loopback"
    admitted = await OutboundGuard(allow=["127.0.0.0/8", "::1/128"]).resolve("localhost", 443)
    assert admitted and "127.0.0.1" in admitted
    with pytest.raises(DnsFailure):
        await OutboundGuard().resolve("no-such-host.invalid", 443)


def test_dns_servers_must_be_addresses() -> None:
    with pytest.raises(ValueError, match="IP address"):
        OutboundGuard(dns_servers=["dns.example"])
    OutboundGuard(dns_servers=["[::1]:5353", "::1", "127.0.0.1"])
