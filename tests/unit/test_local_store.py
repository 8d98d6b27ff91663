"""The embedded artifact store: atomic writes, hashes, listing, key safety."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from driftline.errors import ArtifactNotFound
from driftline.storage.base import InvalidKey
from driftline.storage.local import LocalArtifactStore


async def test_round_trip_hash_and_listing(tmp_path: Path) -> None:
    async with LocalArtifactStore(tmp_path / "store") as store:
        stored = await store.put_bytes("t/m/products/summary.json", b"{}", "application/json")
        assert stored.sha256 == hashlib.sha256(b"{}").hexdigest() and stored.bytes == 2
        source = tmp_path / "big.bin"
        source.write_bytes(b"x" * 3_000_000)
        big = await store.put_file("t/m/raw/particles.nc", source, "application/x-netcdf")
        assert big.bytes == 3_000_000
        assert await store.get_bytes("t/m/products/summary.json") == b"{}"
        assert [o.key for o in await store.list("t/m/")] == [
            "t/m/products/summary.json",
            "t/m/raw/particles.nc",
        ]
        head = await store.head("t/m/raw/particles.nc")
        assert head is not None and head.media_type == "application/x-netcdf"
        assert await store.exists("t/m/raw/particles.nc")
        assert await store.presigned_url("t/m/raw/particles.nc") is None
        target = tmp_path / "copy.nc"
        await store.download("t/m/raw/particles.nc", target)
        assert target.stat().st_size == 3_000_000
        with pytest.raises(ArtifactNotFound):
            await store.get_bytes("t/m/missing")
        leftovers = [
            p.name
            for p in (tmp_path / "store").rglob("*")
            if ".tmp" in p.name or (p.name.startswith(".") and not p.name.endswith(".meta.json"))
        ]
        assert leftovers == [], "atomic writes leave no temp files"


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs", "a//b", "a\\b", ""])
async def test_unsafe_keys_are_refused(tmp_path: Path, key: str) -> None:
    async with LocalArtifactStore(tmp_path) as store:
        with pytest.raises(InvalidKey):
            await store.put_bytes(key, b"", "text/plain")
