"""The S3 store against the real MinIO: round trip, multipart, errors mapped at the edge."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from driftline.errors import ArtifactNotFound, StorageUnavailable
from driftline.settings import Settings
from driftline.storage.s3 import S3ArtifactStore


async def test_round_trip_multipart_and_presigned(settings: Settings, tmp_path: Path) -> None:
    big = tmp_path / "particles.nc"
    big.write_bytes(bytes(range(256)) * (20 * 4096))  # 20 MiB: uploaded in parts
    async with S3ArtifactStore(settings) as store:
        stored = await store.put_file("t/m/raw/particles.nc", big, "application/x-netcdf")
        assert stored.sha256 == hashlib.sha256(big.read_bytes()).hexdigest()
        await store.put_bytes("t/m/products/summary.json", b'{"a": 1}', "application/json")
        listed = await store.list("t/m/")
        assert [o.key for o in listed] == ["t/m/products/summary.json", "t/m/raw/particles.nc"]
        assert listed[1].sha256 == stored.sha256 and listed[1].bytes == big.stat().st_size
        assert await store.get_bytes("t/m/products/summary.json") == b'{"a": 1}'
        copy = tmp_path / "copy.nc"
        await store.download("t/m/raw/particles.nc", copy)
        assert copy.read_bytes() == big.read_bytes()
        url = await store.presigned_url("t/m/products/summary.json")
        assert url is not None
        async with httpx.AsyncClient() as client:
            assert (await client.get(url)).content == b'{"a": 1}'
        assert await store.head("t/m/nothing") is None
        with pytest.raises(ArtifactNotFound):
            await store.get_bytes("t/m/nothing")


async def test_unreachable_endpoint_is_transient(settings: Settings) -> None:
    closed = settings.model_copy(update={"s3_endpoint_url": "http://127.0.0.1:9"})
    async with S3ArtifactStore(closed) as store:
        with pytest.raises(StorageUnavailable):
            await store.put_bytes("t/x", b"", "text/plain")
