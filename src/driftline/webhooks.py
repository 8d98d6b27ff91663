"""Signed callbacks following the Standard Webhooks spec (standardwebhooks.com).

Signed content is `"{webhook_id}.{timestamp}.{body}"`, HMAC-SHA256 with the base64-decoded
tenant secret (`whsec_<base64>`); headers `webhook-id` (stable across retries),
`webhook-timestamp` (unix seconds) and `webhook-signature: v1,<base64>`.

A callback URL that resolves to a private, loopback, link-local or otherwise internal
address is refused (SSRF) unless its host or address is allow-listed by an operator.
The address is checked again at delivery time against DNS rebinding.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import secrets
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from driftline.errors import InvalidMission, InvalidSignature

SECRET_PREFIX = "whsec_"
RETRY_AFTER_CAP_S = 60.0


def generate_secret() -> str:
    """A Standard Webhooks secret: `whsec_` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    raw = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    return base64.b64decode(raw)


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value for one message."""
    content = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(secret: str, headers: Mapping[str, str], body: bytes, tolerance_s: int = 300) -> None:
    """What a receiver does: check the timestamp window and any of the `v1` signatures."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        webhook_id = lowered["webhook-id"]
        timestamp = int(lowered["webhook-timestamp"])
        signatures = lowered["webhook-signature"].split()
    except (KeyError, ValueError) as exc:
        raise InvalidSignature("missing webhook headers") from exc
    if abs(time.time() - timestamp) > tolerance_s:
        raise InvalidSignature("timestamp outside the tolerance window")
    expected = sign(secret, webhook_id, timestamp, body)
    if not any(hmac.compare_digest(expected, s) for s in signatures):
        raise InvalidSignature("no matching signature")


def _allowed(
    host: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address, allowlist: Sequence[str]
) -> bool:
    for entry in allowlist:
        if entry.lower() == host.lower():
            return True
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def _internal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return bool(
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
    )


def check_callback_url(url: str, *, allow_private: bool, allowlist: Sequence[str]) -> None:
    """Refuse callbacks that are not http(s) or resolve to internal addresses."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidMission("callback_url_refused", f"callback URL {url!r} is not http(s)")
    host = parts.hostname
    try:
        infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise InvalidMission(
            "callback_url_refused", f"callback host {host!r} does not resolve"
        ) from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if _internal(address) and not allow_private and not _allowed(host, address, allowlist):
            raise InvalidMission(
                "callback_url_refused",
                f"callback URL {url!r} resolves to the internal address {address}; an operator "
                "must allow-list it (DRIFTLINE_WEBHOOK_ALLOWLIST)",
            )


@dataclass(frozen=True)
class DeliveryResult:
    delivered: bool
    attempts: int
    last_status: int | None
    last_error: str | None


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value and value.isdigit():
        return min(float(value), RETRY_AFTER_CAP_S)
    return None


async def deliver(
    url: str,
    body: bytes,
    *,
    secret: str,
    webhook_id: str,
    max_attempts: int,
    backoff_s: float,
    timeout_s: float,
    client: httpx.AsyncClient | None = None,
    allow_private: bool = False,
    allowlist: Sequence[str] = (),
) -> DeliveryResult:
    """POST the signed body, retrying connection errors, 408, 429 and 5xx with backoff.

    Never raises for a failed delivery: a failing receiver never fails the mission.
    """
    own_client = client is None
    http = client or httpx.AsyncClient()
    last_status: int | None = None
    last_error: str | None = None
    attempt = 0
    try:
        while attempt < max_attempts:
            attempt += 1
            delay = backoff_s * 2 ** (attempt - 1)
            try:
                await asyncio.to_thread(
                    check_callback_url, url, allow_private=allow_private, allowlist=allowlist
                )
            except InvalidMission as exc:
                return DeliveryResult(False, attempt, None, exc.detail)
            timestamp = int(time.time())
            headers = {
                "content-type": "application/json",
                "webhook-id": webhook_id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": sign(secret, webhook_id, timestamp, body),
            }
            try:
                response = await http.post(url, content=body, headers=headers, timeout=timeout_s)
            except httpx.HTTPError as exc:
                last_status, last_error = None, f"{type(exc).__name__}: {exc}"
            else:
                last_status = response.status_code
                if 200 <= response.status_code < 300:
                    return DeliveryResult(True, attempt, last_status, None)
                last_error = f"HTTP {response.status_code}"
                if response.status_code < 500 and response.status_code not in (408, 429):
                    return DeliveryResult(False, attempt, last_status, last_error)
                delay = _retry_after(response) or delay
            if attempt < max_attempts:
                await asyncio.sleep(delay)
        return DeliveryResult(False, attempt, last_status, last_error)
    finally:
        if own_client:
            await http.aclose()
