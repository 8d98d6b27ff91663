"""The artifact store interface: S3 in production, a local folder as the embedded default."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

from driftline.errors import InvalidKey


@dataclass(frozen=True)
class StoredObject:
    """An object as stored: key, size, content hash and media type."""

    key: str
    bytes: int
    sha256: str
    media_type: str


CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """SHA-256 of a file read in chunks (particle files can be gigabytes)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_key(key: str) -> str:
    """Keys are relative POSIX paths like `<tenant>/<mission>/products/map.png`."""
    parts = key.split("/")
    if not key or key.startswith("/") or "\\" in key or ".." in parts or "" in parts:
        raise InvalidKey(f"invalid artifact key {key!r}")
    return key


class ArtifactStore(Protocol):
    """Where artifacts live; keys are deterministic, so writing twice overwrites."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def put_bytes(self, key: str, data: bytes, media_type: str) -> StoredObject: ...

    async def put_file(self, key: str, path: Path, media_type: str) -> StoredObject: ...

    async def get_bytes(self, key: str) -> bytes: ...

    async def download(self, key: str, path: Path) -> None: ...

    async def exists(self, key: str) -> bool: ...

    async def head(self, key: str) -> StoredObject | None: ...

    async def list(self, prefix: str) -> list[StoredObject]: ...

    async def presigned_url(self, key: str, expires_s: int = 3600) -> str | None: ...
