"""Pick the artifact store from the settings."""

from __future__ import annotations

from driftline.settings import Settings
from driftline.storage.base import ArtifactStore
from driftline.storage.local import LocalArtifactStore
from driftline.storage.s3 import S3ArtifactStore


def open_artifact_store(settings: Settings) -> ArtifactStore:
    """S3 when `s3_endpoint_url` is set, else the local folder (the embedded default).

    Use as `async with open_artifact_store(settings) as store:`.
    """
    if settings.s3_endpoint_url:
        return S3ArtifactStore(settings)
    return LocalArtifactStore(settings.artifact_dir)
