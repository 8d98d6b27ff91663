"""Small helpers shared by the test layers."""

from __future__ import annotations

import uuid


def unique_id() -> str:
    """A short id that never collides between tests (names of topics, databases, buckets)."""
    return uuid.uuid4().hex[:12]
