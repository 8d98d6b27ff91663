"""FastAPI dependencies: the process's services and the calling tenant."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from driftline.auth import tenant_for_key
from driftline.db.unit_of_work import Database
from driftline.settings import Settings
from driftline.storage.base import ArtifactStore


@dataclass
class ApiServices:
    """Created once in the app's lifespan; never at import time."""

    settings: Settings
    database: Database
    storage: ArtifactStore


def get_services(request: Request) -> ApiServices:
    services: ApiServices = request.app.state.services
    return services


ServicesDep = Annotated[ApiServices, Depends(get_services)]

_bearer = HTTPBearer(auto_error=False)


async def get_tenant(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing API key: send Authorization: Bearer <key>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    async with services.database.unit_of_work() as uow:
        tenant = await tenant_for_key(uow, credentials.credentials)
    if tenant is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "unknown or revoked API key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return tenant


TenantDep = Annotated[str, Depends(get_tenant)]
