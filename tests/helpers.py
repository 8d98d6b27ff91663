"""Small helpers shared by the test layers."""

from __future__ import annotations

import uuid
from typing import Any


def unique_id() -> str:
    """A short id that never collides between tests (names of topics, databases, buckets)."""
    return uuid.uuid4().hex[:12]


def mission_body(**changes: Any) -> dict[str, Any]:
    """A mission inside the sample forcing (open water west of Norway)."""
    body: dict[str, Any] = {
        "name": "Life raft adrift",
        "object_type": "LIFE-RAFT-DB-10",
        "last_known_position": {
            "lat": 60.0,
            "lon": 4.0,
            "time": "2024-01-01T06:00:00Z",
            "radius_m": 1000,
        },
        "duration_hours": 12,
        "particles": 500,
        "external_ref": "TEST-1",
    }
    body.update(changes)
    return body
