"""A mission's result as stored on its row and answered by `GET /v1/missions/{id}/results`.

The post-processing stage builds it, the API reads it: one typed model for both, so a
field renamed on one side cannot silently disappear on the other.
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel

from driftline.contracts.events import ArtifactRef, MissionSummary


class StoredArtifact(ArtifactRef):
    """An artifact as the API knows it: the public reference plus its object-store key."""

    key: str


class MissionResult(BaseModel):
    """Summary and artifacts of a completed mission."""

    summary: MissionSummary
    artifacts: list[StoredArtifact]

    def artifact(self, name: str) -> StoredArtifact | None:
        return next((a for a in self.artifacts if a.name == name), None)

    def public_artifacts(self) -> list[ArtifactRef]:
        """The references downstream consumers see (without storage keys)."""
        return [ArtifactRef.model_validate(a.model_dump(exclude={"key"})) for a in self.artifacts]


class MissionResults(BaseModel):
    """The answer of `GET /v1/missions/{id}/results` (object-store keys stay inside)."""

    mission_id: uuid.UUID
    status: str
    summary: MissionSummary
    artifacts: list[ArtifactRef]
