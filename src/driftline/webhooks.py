"""Standard Webhooks on the wire: signing, the callback address rule, one pinned attempt.

Signing and verification are the `standardwebhooks` package's (standardwebhooks.com):
signed content `"{webhook_id}.{timestamp}.{body}"`, HMAC-SHA256 with the tenant secret
(`whsec_<base64>`), headers `webhook-id` (stable across retries), `webhook-timestamp`
(unix seconds of the attempt) and `webhook-signature: v1,<base64>`.

A callback may only reach addresses that are globally routable (`ipaddress.is_global`,
minus the IANA special-purpose blocks listed below, which some Python releases call
global), unless an operator allow-lists its host or address. `check_callback_url` is that
rule as a pure function of a resolver, used by the API at POST time and again before
every attempt. `WebhookSender` then connects to the very address it checked, sending the
original `Host` header and TLS server name, so a DNS answer that changes between the
check and the connection (rebinding) never reaches an internal address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import secrets
import socket
import ssl
import time
from base64 import b64encode
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any

import certifi
import httpx
from standardwebhooks import Webhook, WebhookVerificationError
from standardwebhooks.webhooks import EmptyWebhookSecretError

from driftline.errors import CallbackRefused, CallbackUnresolvable, InvalidSignature

SECRET_PREFIX = "whsec_"
USER_AGENT = "Driftline-Webhooks/1"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: `socket.getaddrinfo` or a stand-in with its shape: (host, port, ...) -> [(.., sockaddr)].
Resolver = Callable[..., Sequence[tuple[Any, ...]]]


# -- signing -------------------------------------------------------------------------------


def generate_secret() -> str:
    """A Standard Webhooks secret: `whsec_` + base64 of 32 random bytes."""
    return SECRET_PREFIX + b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value for one message."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    return Webhook(secret).sign(webhook_id, moment, body.decode("utf-8"))


def signed_headers(secret: str, webhook_id: str, body: bytes, now: float) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt made at `now` (unix seconds)."""
    timestamp = math.floor(now)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, webhook_id, timestamp, body),
    }


def verify(secret: str, headers: Mapping[str, str], body: bytes) -> None:
    """What a receiver does: timestamp within 5 minutes and one matching `v1` signature."""
    try:
        Webhook(secret).verify(body, dict(headers), json_parse=False)
    except (WebhookVerificationError, EmptyWebhookSecretError, ValueError) as exc:
        raise InvalidSignature(f"webhook does not verify: {exc}") from exc


# -- the address rule ----------------------------------------------------------------------


def _networks(*cidrs: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


#: Refused whatever `is_global` says (Python 3.11 calls multicast, 192.0.0.9, 6to4, NAT64,
#: fec0::/10 and IPv4-compatible addresses global). From the IANA IPv4 and IPv6
#: special-purpose address registries, plus deprecated blocks that still route somewhere.
REFUSED_V4 = _networks(
    "0.0.0.0/8",  # "this network"; 0.0.0.0 reaches the local host on Linux
    "10.0.0.0/8",  # private
    "100.64.0.0/10",  # shared address space (carrier-grade NAT)
    "127.0.0.0/8",  # loopback
    "169.254.0.0/16",  # link-local, cloud metadata (169.254.169.254)
    "172.16.0.0/12",  # private
    "192.0.0.0/24",  # IETF protocol assignments: all of it, .9 and .10 included
    "192.0.2.0/24",  # documentation (TEST-NET-1)
    "192.88.99.0/24",  # 6to4 relay anycast (deprecated)
    "192.168.0.0/16",  # private
    "198.18.0.0/15",  # benchmarking
    "198.51.100.0/24",  # documentation (TEST-NET-2)
    "203.0.113.0/24",  # documentation (TEST-NET-3)
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",  # reserved, and the limited broadcast 255.255.255.255
)
REFUSED_V6 = _networks(
    "::/96",  # unspecified, loopback, deprecated IPv4-compatible (::127.0.0.1)
    "::ffff:0:0:0/96",  # IPv4-translated (SIIT)
    "64:ff9b::/96",  # NAT64: reaches any IPv4 address, private ones included
    "64:ff9b:1::/48",  # NAT64, local use
    "100::/64",  # discard-only
    "100:0:0:1::/64",  # dummy prefix
    "2001::/23",  # IETF protocol assignments, Teredo (2001::/32) included
    "2001:db8::/32",  # documentation
    "2002::/16",  # 6to4: embeds any IPv4 address (2002:7f00:1:: is 127.0.0.1)
    "3fff::/20",  # documentation
    "5f00::/16",  # segment routing (SRv6) SIDs
    "fc00::/7",  # unique local
    "fe80::/10",  # link-local
    "fec0::/10",  # site-local (deprecated)
    "ff00::/8",  # multicast
)
#: Not a unicast destination at all: refused even when private addresses are allowed.
NEVER_DESTINATIONS = _networks(
    "0.0.0.0/8", "224.0.0.0/4", "255.255.255.255/32", "::/128", "ff00::/8"
)


def plain(address: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address (::ffff:10.0.0.1) as the IPv4 address it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def globally_routable(address: IPAddress) -> bool:
    """Whether a callback may reach `address` without an operator's allow-list."""
    address = plain(address)
    refused = REFUSED_V4 if isinstance(address, ipaddress.IPv4Address) else REFUSED_V6
    return address.is_global and not any(address in network for network in refused)


def _never_destination(address: IPAddress) -> bool:
    return any(
        address in network for network in NEVER_DESTINATIONS if network.version == address.version
    )


def _allow_listed(host: str, address: IPAddress, allowlist: Sequence[str]) -> bool:
    for entry in allowlist:
        if entry.strip().lower() == host.lower():
            return True
        try:
            network = ipaddress.ip_network(entry.strip(), strict=False)
        except ValueError:
            continue
        if address.version == network.version and address in network:
            return True
    return False


def address_refusal(
    host: str, address: IPAddress, *, allow_private: bool, allowlist: Sequence[str]
) -> str | None:
    """Why a callback to `host` may not connect to `address`, or None if it may."""
    address = plain(address)
    if _never_destination(address):
        return f"{address} is not a unicast destination"
    if globally_routable(address) or allow_private or _allow_listed(host, address, allowlist):
        return None
    return (
        f"{address} is not a globally routable address; an operator must allow-list it "
        "(DRIFTLINE_WEBHOOK_ALLOWLIST)"
    )


@dataclass(frozen=True)
class CallbackTarget:
    """A callback URL whose host resolved to `addresses`, every one of them allowed."""

    url: httpx.URL
    host: str  # ASCII (IDNA) form, for the Host header and the TLS server name
    port: int
    addresses: tuple[IPAddress, ...]

    @property
    def host_is_address(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True


def check_callback_url(
    url: str,
    *,
    allow_private: bool,
    allowlist: Sequence[str],
    resolve: Resolver = socket.getaddrinfo,
) -> CallbackTarget:
    """The URL's target if it is http(s) and resolves only to addresses a callback may
    reach; raises `CallbackRefused` (`CallbackUnresolvable` when the host does not
    resolve). Blocking: it resolves the host with `resolve`."""
    try:
        parsed = httpx.URL(url)
        host = parsed.raw_host.decode("ascii")
    except (httpx.InvalidURL, UnicodeError) as exc:
        raise CallbackRefused(f"callback URL {url!r} is not a valid URL") from exc
    if parsed.scheme not in ("http", "https") or not host:
        raise CallbackRefused(f"callback URL {url!r} is not http(s)")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    addresses = _resolve(host, port, resolve)
    for address in addresses:
        why = address_refusal(host, address, allow_private=allow_private, allowlist=allowlist)
        if why is not None:
            raise CallbackRefused(f"callback URL {url!r} is refused: {why}")
    return CallbackTarget(parsed, host, port, addresses)


def _resolve(host: str, port: int, resolve: Resolver) -> tuple[IPAddress, ...]:
    try:
        infos = resolve(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise CallbackUnresolvable(f"callback host {host!r} does not resolve ({exc})") from exc
    found: dict[IPAddress, None] = {}
    for info in infos:
        try:
            found[ipaddress.ip_address(info[4][0])] = None
        except ValueError as exc:  # an address family other than IPv4/IPv6
            raise CallbackRefused(f"callback host {host!r} resolves to {info[4][0]!r}") from exc
    if not found:
        raise CallbackUnresolvable(f"callback host {host!r} resolves to no address")
    return tuple(found)


# -- one attempt ---------------------------------------------------------------------------


class AttemptVerdict(StrEnum):
    """What one attempt means for the delivery."""

    DELIVERED = "delivered"  # 2xx
    RETRY = "retry"  # 408, 429, 5xx, timeout, connection error, host not resolving
    FAILED = "failed"  # any other answer, or an address the rule refuses: no more retries


def verdict_for_status(status: int) -> AttemptVerdict:
    if 200 <= status < 300:
        return AttemptVerdict.DELIVERED
    if status in (408, 429) or status >= 500:
        return AttemptVerdict.RETRY
    # Other 4xx: the receiver refuses this message; 3xx: redirects are never followed
    # (they could lead anywhere), so the URL is wrong. Neither heals by waiting.
    return AttemptVerdict.FAILED


@dataclass(frozen=True)
class AttemptResult:
    """The outcome of one POST (or of the check that prevented it)."""

    verdict: AttemptVerdict
    duration_s: float
    status: int | None = None
    error: str | None = None
    address: str | None = None
    retry_after_s: float | None = None


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """A `Retry-After` value (seconds or an HTTP date) as seconds from `now`; None if absent
    or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - now)


class WebhookSender:
    """Signed POSTs, each to an address checked just before and never re-resolved.

    A fresh connection per attempt: a pooled connection is matched by address alone, so
    reusing one would send a message for one host over TLS verified for another.
    Proxies from the environment are ignored (they would resolve the name again), and
    redirects are never followed.
    """

    def __init__(
        self,
        *,
        timeout_s: float,
        allow_private: bool,
        allowlist: Sequence[str],
        resolve: Resolver = socket.getaddrinfo,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._timeout_s = timeout_s
        self._allow_private = allow_private
        self._allowlist = tuple(allowlist)
        self._resolve = resolve
        self._ssl = ssl_context or ssl.create_default_context(cafile=certifi.where())

    async def attempt(
        self, url: str, body: bytes, *, secret: str, webhook_id: str
    ) -> AttemptResult:
        """Check the URL, then POST the signed body to the checked address; never raises
        for a failed delivery."""
        started = time.monotonic()
        try:
            target = await asyncio.to_thread(
                check_callback_url,
                url,
                allow_private=self._allow_private,
                allowlist=self._allowlist,
                resolve=self._resolve,
            )
        except CallbackUnresolvable as exc:
            return AttemptResult(AttemptVerdict.RETRY, time.monotonic() - started, error=exc.detail)
        except CallbackRefused as exc:
            return AttemptResult(
                AttemptVerdict.FAILED, time.monotonic() - started, error=exc.detail
            )
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            **signed_headers(secret, webhook_id, body, time.time()),
        }
        try:
            async with asyncio.timeout(self._timeout_s):
                return await self._post(target, body, headers, started)
        except TimeoutError:
            return AttemptResult(
                AttemptVerdict.RETRY,
                time.monotonic() - started,
                error=f"no answer within {self._timeout_s:g} s",
            )

    async def _post(
        self, target: CallbackTarget, body: bytes, headers: dict[str, str], started: float
    ) -> AttemptResult:
        """Try the checked addresses in order until one accepts a connection."""
        error = "no address"
        for address in target.addresses:
            try:
                status, retry_after = await self._post_to(target, address, body, headers)
            except httpx.ConnectError as exc:
                error = f"cannot connect to {address}: {exc or type(exc).__name__}"
                continue  # nothing was sent: the next address is safe to try
            except httpx.HTTPError as exc:
                return AttemptResult(
                    AttemptVerdict.RETRY,
                    time.monotonic() - started,
                    error=f"{type(exc).__name__}: {exc}",
                    address=str(address),
                )
            return AttemptResult(
                verdict_for_status(status),
                time.monotonic() - started,
                status=status,
                error=None if 200 <= status < 300 else f"HTTP {status}",
                address=str(address),
                retry_after_s=retry_after,
            )
        return AttemptResult(AttemptVerdict.RETRY, time.monotonic() - started, error=error)

    async def _post_to(
        self, target: CallbackTarget, address: IPAddress, body: bytes, headers: dict[str, str]
    ) -> tuple[int, float | None]:
        pinned = target.url.copy_with(host=str(address))
        extensions = {} if target.host_is_address else {"sni_hostname": target.host}
        request_headers = {**headers, "host": target.url.netloc.decode("ascii")}
        async with (
            httpx.AsyncClient(
                verify=self._ssl,
                trust_env=False,
                follow_redirects=False,
                timeout=self._timeout_s,
                limits=httpx.Limits(max_keepalive_connections=0),
            ) as client,
            client.stream(
                "POST", pinned, content=body, headers=request_headers, extensions=extensions
            ) as response,
        ):
            # The body is never read: a receiver cannot make us hold megabytes.
            retry_after = retry_after_seconds(response.headers.get("retry-after"), time.time())
            return response.status_code, retry_after
