"""`GET /v1/object-types`: the Leeway categories a mission's `object_type` may name."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from driftline.api.problems import problem_responses
from driftline.contracts.object_types import ObjectType, search_object_types

router = APIRouter(prefix="/v1/object-types", tags=["reference"])


@router.get("", response_model=list[ObjectType], responses=problem_responses(422))
async def list_object_types(
    response: Response,
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Words that must all appear in the key or description (any case), "
            "or the id, e.g. `life raft`.",
        ),
    ] = None,
) -> list[ObjectType]:
    """The 85 OpenDrift Leeway object categories (key, id, description, leeway
    coefficients), or those matching `q`. Public: no key needed; the list changes only
    with an OpenDrift upgrade."""
    response.headers["Cache-Control"] = "public, max-age=86400"
    return search_object_types([q] if q else [])
