"""The API's edge: each `/v1` request is authenticated, rate-limited and checked for size
and media type before a byte of its body is read.

A pure ASGI middleware (no buffering): a 64 MB body from an unknown caller answers 401
unread; a declared `Content-Length` above the limit answers 413 unread; a body streamed
without one is counted as it arrives and stopped with 413 at the limit. The caller it
authenticated travels to the routes in the request state (`deps.get_caller`), and every
answer carries the key's `RateLimit` / `RateLimit-Policy` headers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from driftline.api.problems import BAD_HEADER, RATE_LIMITED, problem_response, unavailable
from driftline.api.ratelimit import RateDecision
from driftline.auth import Caller, authenticate
from driftline.errors import TransientError

if TYPE_CHECKING:
    from driftline.api.deps import ApiServices

GUARDED_PREFIX = "/v1/"
#: Reference data anyone may read (no key, no limit): it is static and served from memory.
PUBLIC_PATHS = frozenset({"/v1/object-types"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
JSON_MEDIA_TYPE = "application/json"
CALLER_STATE = "caller"


class BodyTooLarge(StarletteHTTPException):
    """Raised from `receive` when a streamed body passes the limit (answers 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


@dataclass(frozen=True)
class Admission:
    """A request let in: who sent it and what its rate limit said."""

    caller: Caller
    rate: RateDecision


def bearer_token(authorization: str | None) -> str | None:
    """The key of an `Authorization: Bearer <key>` header, else None."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def media_type(content_type: str | None) -> str:
    """`application/json; charset=utf-8` -> `application/json`."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def declared_length(headers: Headers) -> int | None:
    """The `Content-Length`, None if absent; ValueError if it is not a plain number."""
    value = headers.get("content-length")
    if value is None:
        return None
    value = value.strip()
    if not (value.isascii() and value.isdigit()):
        raise ValueError(value)
    return int(value)


def _unauthorized(detail: str) -> Response:
    return problem_response(401, detail, headers={"WWW-Authenticate": "Bearer"})


async def admit(services: ApiServices, method: str, headers: Headers) -> Admission | Response:
    """Let the request in, or the problem answering it (401, 429, 400, 413, 415, 503)."""
    token = bearer_token(headers.get("authorization"))
    if token is None:
        return _unauthorized("missing API key: send Authorization: Bearer <key>")
    try:
        async with services.database.reads() as uow:  # one statement, no transaction
            caller = await authenticate(uow, token)
    except TransientError:
        return unavailable("the key store is unavailable; nothing was done, retry shortly")
    if caller is None:
        return _unauthorized("unknown or revoked API key")
    rate = services.limiter.take(caller.key_id, "read" if method in READ_METHODS else "write")
    if not rate.allowed:
        return problem_response(
            429,
            f"rate limit of this API key reached ({rate.policy.burst} requests at once, "
            f"{rate.policy.per_s:g} per second); retry in {rate.retry_after_s} s",
            kind=RATE_LIMITED,
            headers=rate.headers(),
        )
    refused = check_body(method, headers, services.settings.api_max_body_bytes)
    if refused is not None:
        for name, value in rate.headers().items():
            refused.headers[name] = value
        return refused
    return Admission(caller=caller, rate=rate)


def check_body(method: str, headers: Headers, limit: int) -> Response | None:
    """413 for a declared body over `limit`, 415 for a body that is not JSON."""
    try:
        length = declared_length(headers)
    except ValueError:
        return problem_response(400, "Content-Length is not a number", kind=BAD_HEADER)
    if length is not None and length > limit:
        return problem_response(413, f"the request body is larger than {limit} bytes")
    has_body = (length or 0) > 0 or "transfer-encoding" in headers
    json_body = media_type(headers.get("content-type")) == JSON_MEDIA_TYPE
    if method in BODY_METHODS and has_body and not json_body:
        return problem_response(
            415, "the request body must be application/json", headers={"Accept": JSON_MEDIA_TYPE}
        )
    return None


def counting_receive(receive: Receive, limit: int) -> Receive:
    """`receive`, raising BodyTooLarge once more than `limit` body bytes arrived."""
    received = 0

    async def receive_counted() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge(limit)
        return message

    return receive_counted


def with_headers(send: Send, extra: Mapping[str, str]) -> Send:
    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            for name, value in extra.items():
                if name not in headers:
                    headers[name] = value
        await send(message)

    return send_with_headers


class RequestGuard:
    """ASGI middleware applying `admit` to every guarded request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):  # served under a prefix behind a proxy
            path = path[len(root) :]
        if (
            scope["type"] != "http"
            or not path.startswith(GUARDED_PREFIX)
            or path.rstrip("/") in PUBLIC_PATHS
        ):
            await self.app(scope, receive, send)
            return
        services: ApiServices = scope["app"].state.services
        verdict = await admit(services, scope["method"], Headers(scope=scope))
        if isinstance(verdict, Response):
            await verdict(scope, receive, send)
            return
        scope.setdefault("state", {})[CALLER_STATE] = verdict.caller
        started = False
        send_rated = with_headers(send, verdict.rate.headers())

        async def send_tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send_rated(message)

        limit = services.settings.api_max_body_bytes
        try:
            await self.app(scope, counting_receive(receive, limit), send_tracked)
        except BodyTooLarge as exc:
            # Normally answered by the app's problem handler; this covers a read outside it.
            if started:
                raise
            await problem_response(413, str(exc.detail))(scope, receive, send_rated)
