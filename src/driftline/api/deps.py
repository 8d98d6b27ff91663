"""FastAPI dependencies: the process's services, the caller and checked headers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from driftline.api.guard import CALLER_STATE
from driftline.api.problems import BAD_HEADER, ApiProblem
from driftline.api.ratelimit import RateLimiter
from driftline.api.streams import StatusFeed, StreamSlots, StreamTiming
from driftline.auth import Caller
from driftline.db.unit_of_work import Database
from driftline.missions import CallbackCheck
from driftline.settings import Settings
from driftline.storage.base import ArtifactStore


@dataclass
class ApiServices:
    """Created once in the app's lifespan; never at import time."""

    settings: Settings
    database: Database
    storage: ArtifactStore
    limiter: RateLimiter
    slots: StreamSlots
    feed: StatusFeed
    check_callback: CallbackCheck

    @property
    def stream_timing(self) -> StreamTiming:
        return StreamTiming(
            idle_timeout_s=self.settings.sse_idle_timeout_s,
            keepalive_s=self.settings.sse_keepalive_s,
        )


def get_services(request: Request) -> ApiServices:
    services: ApiServices = request.app.state.services
    return services


ServicesDep = Annotated[ApiServices, Depends(get_services)]

_bearer = HTTPBearer(auto_error=False)


def get_caller(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """The caller the edge (`guard.RequestGuard`) authenticated; the bearer dependency
    only documents the scheme in OpenAPI."""
    caller = request.scope.get("state", {}).get(CALLER_STATE)
    if not isinstance(caller, Caller):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing API key: send Authorization: Bearer <key>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return caller


CallerDep = Annotated[Caller, Depends(get_caller)]


def get_tenant(caller: CallerDep) -> str:
    return caller.tenant


TenantDep = Annotated[str, Depends(get_tenant)]

#: Printable ASCII, no surrounding blanks, at most 255 characters (the column's width).
_IDEMPOTENCY_KEY = re.compile(r"[!-~](?:[ -~]{0,253}[!-~])?")


def get_idempotency_key(
    idempotency_key: Annotated[
        str | None,
        Header(
            description="Makes a retried POST safe (IETF draft): 1 to 255 printable ASCII "
            "characters; the same key and body answer the first answer again.",
            json_schema_extra={
                "minLength": 1,
                "maxLength": 255,
                "pattern": "^[!-~]([ -~]*[!-~])?$",
            },
        ),
    ] = None,
) -> str | None:
    """The Idempotency-Key header, checked: a malformed one answers 400."""
    if idempotency_key is None:
        return None
    if _IDEMPOTENCY_KEY.fullmatch(idempotency_key) is None:
        raise ApiProblem(
            BAD_HEADER,
            "Idempotency-Key must be 1 to 255 printable ASCII characters (it was empty, "
            "too long or held other characters)",
        )
    return idempotency_key


IdempotencyKeyDep = Annotated[str | None, Depends(get_idempotency_key)]
