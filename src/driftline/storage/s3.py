"""Artifacts in S3 (MinIO here) through aioboto3; botocore errors mapped at this boundary."""

from __future__ import annotations

import asyncio
import builtins
import hashlib
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, Self

import aioboto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from driftline.errors import ArtifactNotFound, StorageUnavailable
from driftline.settings import Settings
from driftline.storage.base import CHUNK, StoredObject, check_key, sha256_file
from driftline.telemetry import span

NOT_FOUND = {"404", "NoSuchKey", "NotFound"}


class S3ArtifactStore:
    """One client per store, opened in `__aenter__`; large files go up in parts."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.bucket = settings.s3_bucket
        self._stack = AsyncExitStack()
        self._client: Any = None

    async def __aenter__(self) -> Self:
        session = aioboto3.Session()
        self._client = await self._stack.enter_async_context(
            session.client(
                "s3",
                endpoint_url=self._settings.s3_endpoint_url,
                aws_access_key_id=self._settings.s3_access_key,
                aws_secret_access_key=self._settings.s3_secret_key,
                region_name=self._settings.s3_region,
                config=Config(
                    connect_timeout=5,
                    read_timeout=60,
                    retries={"max_attempts": 3},
                    signature_version="s3v4",
                ),
            )
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stack.aclose()

    def _mapped(self, exc: Exception, key: str) -> Exception:
        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in NOT_FOUND:
                return ArtifactNotFound(key)
            return StorageUnavailable(f"S3 error on {key}: {code}")
        return StorageUnavailable(f"S3 unreachable ({type(exc).__name__}): {exc}")

    async def put_bytes(self, key: str, data: bytes, media_type: str) -> StoredObject:
        check_key(key)
        digest = hashlib.sha256(data).hexdigest()
        try:
            await self._client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentType=media_type,
                Metadata={"sha256": digest},
            )
        except (ClientError, BotoCoreError, EndpointConnectionError, OSError) as exc:
            raise self._mapped(exc, key) from exc
        return StoredObject(key, len(data), digest, media_type)

    async def put_file(self, key: str, path: Path, media_type: str) -> StoredObject:
        check_key(key)
        digest = await asyncio.to_thread(sha256_file, path)
        size = (await asyncio.to_thread(path.stat)).st_size
        try:
            with span("storage put", key=key, store="s3", bytes=size):
                await self._client.upload_file(
                    str(path),
                    self.bucket,
                    key,
                    ExtraArgs={"ContentType": media_type, "Metadata": {"sha256": digest}},
                    Config=TransferConfig(
                        multipart_threshold=16 * CHUNK, multipart_chunksize=8 * CHUNK
                    ),
                )
        except (ClientError, BotoCoreError, EndpointConnectionError, OSError) as exc:
            raise self._mapped(exc, key) from exc
        return StoredObject(key, size, digest, media_type)

    async def get_bytes(self, key: str) -> bytes:
        try:
            response = await self._client.get_object(Bucket=self.bucket, Key=check_key(key))
            async with response["Body"] as body:
                return bytes(await body.read())
        except (ClientError, BotoCoreError, EndpointConnectionError, OSError) as exc:
            raise self._mapped(exc, key) from exc

    async def download(self, key: str, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            await self._client.download_file(self.bucket, check_key(key), str(path))
        except (ClientError, BotoCoreError, EndpointConnectionError, OSError) as exc:
            raise self._mapped(exc, key) from exc

    async def head(self, key: str) -> StoredObject | None:
        try:
            meta = await self._client.head_object(Bucket=self.bucket, Key=check_key(key))
        except (ClientError, BotoCoreError, EndpointConnectionError, OSError) as exc:
            mapped = self._mapped(exc, key)
            if isinstance(mapped, ArtifactNotFound):
                return None
            raise mapped from exc
        return StoredObject(
            key,
            int(meta["ContentLength"]),
            meta.get("Metadata", {}).get("sha256", ""),
            meta.get("ContentType", "application/octet-stream"),
        )

    async def exists(self, key: str) -> bool:
        return await self.head(key) is not None

    async def list(self, prefix: str) -> list[StoredObject]:
        keys: list[str] = []
        try:
            paginator = self._client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                keys += [item["Key"] for item in page.get("Contents", [])]
        except (ClientError, BotoCoreError, EndpointConnectionError, OSError) as exc:
            raise self._mapped(exc, prefix) from exc
        heads = [await self.head(key) for key in sorted(keys)]
        return [h for h in heads if h is not None]

    async def presigned_url(self, key: str, expires_s: int = 3600) -> str | None:
        return str(
            await self._client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": check_key(key)},
                ExpiresIn=expires_s,
            )
        )

    async def set_lifecycle(self, rules: builtins.list[dict[str, Any]]) -> None:
        """Replace the bucket's lifecycle rules (expiry by prefix; MinIO and S3 both)."""
        try:
            if rules:
                await self._client.put_bucket_lifecycle_configuration(
                    Bucket=self.bucket, LifecycleConfiguration={"Rules": rules}
                )
            else:
                await self._client.delete_bucket_lifecycle(Bucket=self.bucket)
        except (ClientError, BotoCoreError, EndpointConnectionError, OSError) as exc:
            raise self._mapped(exc, self.bucket) from exc

    async def lifecycle(self) -> builtins.list[dict[str, Any]]:
        try:
            found = await self._client.get_bucket_lifecycle_configuration(Bucket=self.bucket)
        except ClientError as exc:
            if "NoSuchLifecycleConfiguration" in str(exc):
                return []
            raise self._mapped(exc, self.bucket) from exc
        return list(found.get("Rules", []))
