"""`GET /v1/object-types`: the Leeway categories a mission's `object_type` may name."""

from __future__ import annotations

from fastapi import APIRouter, Response

from driftline.contracts.object_types import ObjectType, object_types

router = APIRouter(prefix="/v1/object-types", tags=["reference"])


@router.get("", response_model=list[ObjectType])
async def list_object_types(response: Response) -> tuple[ObjectType, ...]:
    """The 85 OpenDrift Leeway object categories (key, id, description). Public: no key
    needed; the list changes only with an OpenDrift upgrade."""
    response.headers["Cache-Control"] = "public, max-age=86400"
    return object_types()
