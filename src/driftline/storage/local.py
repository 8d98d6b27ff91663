"""Artifacts in a local folder: the embedded default when no S3 endpoint is configured."""

from __future__ import annotations

import asyncio
import json
import mimetypes
import os
import shutil
import tempfile
from pathlib import Path
from typing import Self

from driftline.errors import ArtifactNotFound
from driftline.storage.base import CHUNK, StoredObject, check_key, sha256_file
from driftline.telemetry import span


class LocalArtifactStore:
    """Same key layout as the bucket, under `root`; writes are atomic (temp + rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    async def __aenter__(self) -> Self:
        self.root.mkdir(parents=True, exist_ok=True)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _meta(self, key: str) -> Path:
        path = self._path(key)
        return path.with_name(f".{path.name}.meta.json")

    def _write(self, key: str, source: Path | bytes, media_type: str) -> StoredObject:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                if isinstance(source, bytes):
                    out.write(source)
                else:
                    with source.open("rb") as src:
                        shutil.copyfileobj(src, out, CHUNK)
                out.flush()
                os.fsync(out.fileno())
            digest = sha256_file(tmp)
            stored = StoredObject(key, tmp.stat().st_size, digest, media_type)
            self._meta(key).write_text(json.dumps({"sha256": digest, "media_type": media_type}))
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return stored

    async def put_bytes(self, key: str, data: bytes, media_type: str) -> StoredObject:
        return await asyncio.to_thread(self._write, key, data, media_type)

    async def put_file(self, key: str, path: Path, media_type: str) -> StoredObject:
        with span("storage put", key=key, store="local"):
            return await asyncio.to_thread(self._write, key, path, media_type)

    async def get_bytes(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError as exc:
            raise ArtifactNotFound(key) from exc

    async def download(self, key: str, path: Path) -> None:
        source = self._path(key)
        if not source.exists():
            raise ArtifactNotFound(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(shutil.copyfile, source, path)

    async def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def _head(self, key: str) -> StoredObject | None:
        path = self._path(key)
        if not path.exists():
            return None
        try:
            meta = json.loads(self._meta(key).read_text())
        except (OSError, ValueError):
            guessed = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            meta = {"sha256": sha256_file(path), "media_type": guessed}
        return StoredObject(key, path.stat().st_size, meta["sha256"], meta["media_type"])

    async def head(self, key: str) -> StoredObject | None:
        return await asyncio.to_thread(self._head, key)

    async def list(self, prefix: str) -> list[StoredObject]:
        def scan() -> list[StoredObject]:
            found = []
            for path in sorted(self.root.rglob("*")):
                if not path.is_file() or path.name.startswith("."):
                    continue
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    head = self._head(key)
                    if head is not None:
                        found.append(head)
            return found

        return await asyncio.to_thread(scan)

    async def presigned_url(self, key: str, expires_s: int = 3600) -> str | None:
        return None
