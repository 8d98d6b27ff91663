"""Standard Webhooks signing and verification, and the callback address rule.

The address rule is a pure function of a resolver: every test hands it a fake one, so
nothing here looks up a name or opens a socket. The tables follow the IANA IPv4 and IPv6
special-purpose address registries, plus multicast, deprecated blocks and the IPv6 forms
that embed an IPv4 address (mapped, NAT64, 6to4, IPv4-compatible).
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Sequence
from typing import Any

import pytest
from standardwebhooks import Webhook

from driftline.errors import CallbackRefused, CallbackUnresolvable, InvalidMission
from driftline.webhooks import (
    AttemptVerdict,
    InvalidSignature,
    check_callback_url,
    generate_secret,
    globally_routable,
    retry_after_seconds,
    sign,
    signed_headers,
    verdict_for_status,
    verify,
)

# The example of the Standard Webhooks specification.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = b'{"test": 2432232314}'
EXPECTED = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_reference_vector() -> None:
    assert sign(SECRET, MSG_ID, TIMESTAMP, BODY) == EXPECTED


def test_verify_accepts_fresh_and_rejects_tampered_or_stale() -> None:
    secret = generate_secret()
    now = time.time()
    headers = signed_headers(secret, "msg_1", b"{}", now)
    verify(secret, headers, b"{}")
    Webhook(secret).verify(b"{}", headers)  # what a receiver using the package does
    with pytest.raises(InvalidSignature):
        verify(secret, headers, b'{"x": 1}')
    with pytest.raises(InvalidSignature):
        verify(generate_secret(), headers, b"{}")
    stale = signed_headers(secret, "msg_1", b"{}", now - 3600)
    with pytest.raises(InvalidSignature, match="too old"):
        verify(secret, stale, b"{}")
    with pytest.raises(InvalidSignature, match="headers"):
        verify(secret, {"webhook-id": "msg_1"}, b"{}")


# -- the address rule, with fake resolvers ---------------------------------------------------


def resolving_to(*addresses: str) -> Any:
    """A getaddrinfo stand-in answering `addresses` for any host."""

    def resolve(host: str, port: int, *_: Any, **__: Any) -> list[tuple[Any, ...]]:
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in addresses
        ]

    return resolve


def literal(host: str, port: int, *_: Any, **__: Any) -> list[tuple[Any, ...]]:
    """A getaddrinfo stand-in for URLs whose host is an address literal."""
    return resolving_to(str(ipaddress.ip_address(host)))(host, port)


def check(
    url: str,
    *addresses: str,
    allow_private: bool = False,
    allowlist: Sequence[str] = (),
) -> Any:
    resolve = resolving_to(*addresses) if addresses else literal
    return check_callback_url(
        url, allow_private=allow_private, allowlist=allowlist, resolve=resolve
    )


#: IANA IPv4 special-purpose registry (and multicast, reserved): none globally reachable
#: for a callback. 192.0.0.9 and .10 are marked global by IANA; the whole of 192.0.0.0/24
#: is refused on purpose.
REFUSED_V4 = [
    "0.0.0.0",  # this host on this network
    "0.1.2.3",  # this network
    "10.0.0.5",  # private
    "100.64.0.1",  # shared address space
    "100.127.255.254",
    "127.0.0.1",  # loopback
    "127.255.255.254",
    "169.254.169.254",  # link-local: cloud metadata
    "172.16.0.1",  # private
    "172.31.255.254",
    "192.0.0.1",  # IETF protocol assignments
    "192.0.0.8",  # IPv4 dummy address
    "192.0.0.9",  # port control protocol anycast
    "192.0.0.10",  # traversal using relays around NAT anycast
    "192.0.0.170",  # NAT64/DNS64 discovery
    "192.0.0.171",
    "192.0.2.1",  # documentation
    "192.88.99.1",  # 6to4 relay anycast (deprecated)
    "192.168.1.1",  # private
    "198.18.0.1",  # benchmarking
    "198.19.255.254",
    "198.51.100.7",  # documentation
    "203.0.113.9",  # documentation
    "224.0.0.1",  # multicast
    "239.255.255.250",
    "240.0.0.1",  # reserved
    "255.255.255.255",  # limited broadcast
]

#: IANA IPv6 special-purpose registry, multicast and deprecated blocks.
REFUSED_V6 = [
    "::",  # unspecified
    "::1",  # loopback
    "::127.0.0.1",  # IPv4-compatible (deprecated)
    "::8.8.8.8",  # IPv4-compatible, even of a global address
    "::ffff:0:7f00:1",  # IPv4-translated
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b::808:808",  # NAT64 of a global address: refused too (it is a translator)
    "64:ff9b:1::1",  # NAT64 local use
    "100::1",  # discard-only
    "100:0:0:1::1",  # dummy prefix
    "2001::1",  # Teredo
    "2001:1::1",  # PCP anycast (IANA: global; the protocol block is refused whole)
    "2001:2::1",  # benchmarking
    "2001:3::1",  # AMT
    "2001:4:112::1",  # AS112-v6
    "2001:10::1",  # ORCHID
    "2001:20::1",  # ORCHIDv2
    "2001:db8::1",  # documentation
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "2002:808:808::1",  # 6to4 of a global address: refused too (deprecated relay)
    "3fff::1",  # documentation
    "5f00::1",  # SRv6 SIDs
    "fc00::1",  # unique local
    "fd12:3456:789a::1",
    "fe80::1",  # link-local
    "fec0::1",  # site-local (deprecated)
    "ff02::1",  # multicast, link scope
    "ff0e::1",  # multicast, global scope
]

ALLOWED = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.215.14",
    "192.31.196.1",  # AS112-v4: IANA global
    "192.52.193.1",  # AMT: IANA global
    "192.175.48.1",  # direct delegation AS112: IANA global
    "2606:4700:4700::1111",
    "2a00:1450:4001:80b::200e",
    "2620:4f:8000::1",  # direct delegation AS112: IANA global
    "::ffff:8.8.8.8",  # IPv4-mapped form of a global address
]


def mapped(v4: str) -> str:
    return f"::ffff:{v4}"


@pytest.mark.parametrize("address", REFUSED_V4 + [mapped(a) for a in REFUSED_V4] + REFUSED_V6)
def test_refused_addresses(address: str) -> None:
    assert not globally_routable(ipaddress.ip_address(address))
    with pytest.raises(CallbackRefused) as info:
        check("https://hooks.example.org/x", address)
    assert info.value.reason == "callback_url_refused"
    assert isinstance(info.value, InvalidMission), "the API answers 422 for it"
    assert not isinstance(info.value, CallbackUnresolvable)


@pytest.mark.parametrize("address", ALLOWED)
def test_globally_routable_addresses_are_allowed(address: str) -> None:
    assert globally_routable(ipaddress.ip_address(address))
    target = check("https://hooks.example.org/x", address)
    assert target.addresses == (ipaddress.ip_address(address),)


def test_one_internal_address_among_global_ones_refuses_the_url() -> None:
    with pytest.raises(CallbackRefused, match=r"10\.0\.0\.1"):
        check("https://hooks.example.org/x", "8.8.8.8", "10.0.0.1")
    with pytest.raises(CallbackRefused, match="::1"):
        check("https://hooks.example.org/x", "2606:4700:4700::1111", "::1")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://10.0.0.5/x",
        "http://192.168.1.1/x",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/x",
        "http://[::ffff:127.0.0.1]:8080/x",
        "http://[::ffff:a9fe:a9fe]/x",
        "http://[2002:7f00:1::1]/x",
        "http://[64:ff9b::7f00:1]/x",
        "http://[fe80::1]/x",
    ],
)
def test_internal_address_literals_are_refused(url: str) -> None:
    with pytest.raises(CallbackRefused):
        check(url)


@pytest.mark.parametrize(
    "url", ["ftp://example.org/x", "file:///etc/passwd", "gopher://h/", "http:///x", "not a url"]
)
def test_other_schemes_and_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(CallbackRefused):
        check(url, "8.8.8.8")


def test_the_host_is_resolved_once_with_the_url_port_in_ascii() -> None:
    calls: list[tuple[str, int]] = []

    def resolve(host: str, port: int, *_: Any, **__: Any) -> list[tuple[Any, ...]]:
        calls.append((host, port))
        return resolving_to("8.8.8.8")(host, port)

    for url, expected in [
        ("https://Hooks.Example.org/x", ("hooks.example.org", 443)),
        ("http://hooks.example.org/x", ("hooks.example.org", 80)),
        ("http://hooks.example.org:8080/x", ("hooks.example.org", 8080)),
        ("https://bücher.example/x", ("xn--bcher-kva.example", 443)),
    ]:
        calls.clear()
        target = check_callback_url(url, allow_private=False, allowlist=[], resolve=resolve)
        assert calls == [expected]
        assert (target.host, target.port) == expected


def test_a_host_that_does_not_resolve_is_unresolvable() -> None:
    def failing(*_: Any, **__: Any) -> list[tuple[Any, ...]]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(CallbackUnresolvable, match="does not resolve"):
        check_callback_url(
            "https://nowhere.example/", allow_private=False, allowlist=[], resolve=failing
        )
    with pytest.raises(CallbackUnresolvable, match="no address"):
        check_callback_url(
            "https://nowhere.example/", allow_private=False, allowlist=[], resolve=resolving_to()
        )


def test_allow_list_by_host_or_cidr() -> None:
    check("http://127.0.0.1:9/x", allowlist=["127.0.0.0/8"])
    check("http://hooks.internal:9/x", "127.0.0.1", "::1", allowlist=["HOOKS.internal"])
    check("http://hooks.internal/x", "::ffff:10.1.2.3", allowlist=["10.1.0.0/16"])
    check("http://hooks.internal/x", "fd00::5", allowlist=["fd00::/64"])
    with pytest.raises(CallbackRefused):
        check("http://hooks.internal/x", "10.2.0.1", allowlist=["10.1.0.0/16", "other.host"])
    with pytest.raises(CallbackRefused):  # a malformed entry allows nothing
        check("http://hooks.internal/x", "10.2.0.1", allowlist=["10.2.0.0/33"])


def test_allow_private_admits_internal_unicast_only() -> None:
    for address in ("10.1.2.3", "127.0.0.1", "169.254.1.1", "fd00::1", "::1", "100.64.0.1"):
        check("http://hooks.internal/x", address, allow_private=True)
    for address in ("0.0.0.0", "224.0.0.1", "255.255.255.255", "::", "ff02::1", "::ffff:0.0.0.0"):
        with pytest.raises(CallbackRefused, match="not a unicast destination"):
            check("http://hooks.internal/x", address, allow_private=True, allowlist=["0.0.0.0/0"])


# -- one attempt's verdict ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, AttemptVerdict.DELIVERED),
        (202, AttemptVerdict.DELIVERED),
        (204, AttemptVerdict.DELIVERED),
        (408, AttemptVerdict.RETRY),
        (429, AttemptVerdict.RETRY),
        (500, AttemptVerdict.RETRY),
        (502, AttemptVerdict.RETRY),
        (503, AttemptVerdict.RETRY),
        (301, AttemptVerdict.FAILED),
        (307, AttemptVerdict.FAILED),
        (400, AttemptVerdict.FAILED),
        (401, AttemptVerdict.FAILED),
        (404, AttemptVerdict.FAILED),
        (410, AttemptVerdict.FAILED),
        (422, AttemptVerdict.FAILED),
    ],
)
def test_verdict_for_status(status: int, verdict: AttemptVerdict) -> None:
    assert verdict_for_status(status) is verdict


def test_retry_after_in_seconds_or_as_a_date() -> None:
    now = 1_700_000_000.0
    assert retry_after_seconds("120", now) == 120.0
    assert retry_after_seconds("Wed, 15 Nov 2023 00:13:20 GMT", now) == pytest.approx(7200)
    assert retry_after_seconds("Tue, 14 Nov 2023 20:00:00 GMT", now) == 0.0  # in the past
    assert retry_after_seconds(None, now) is None
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds("-5", now) is None
