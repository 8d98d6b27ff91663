"""Artifact and forcing-subset expiry as bucket lifecycle rules (the retention policy's).

Forcing subsets (`forcing/…`) expire after `retention_forcing_subsets_days`; mission
artifacts (every tenant prefix) after `retention_artifacts_days` when set. The API then
answers 410 Gone for the results of a mission whose artifacts have expired. The local
folder store has no lifecycle: there, operators remove old folders themselves.
"""

from __future__ import annotations

from typing import Any

from driftline.retention import RetentionPolicy
from driftline.settings import Settings
from driftline.storage.s3 import S3ArtifactStore


def lifecycle_rules(policy: RetentionPolicy) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = [
        {
            "ID": "driftline-forcing-subsets",
            "Status": "Enabled",
            "Filter": {"Prefix": "forcing/"},
            "Expiration": {"Days": max(int(policy.forcing_subsets.days), 1)},
        }
    ]
    if policy.artifacts is not None:
        # Forcing has its own shorter rule; S3 applies the earliest matching expiry.
        rules.append(
            {
                "ID": "driftline-mission-artifacts",
                "Status": "Enabled",
                "Filter": {"Prefix": ""},
                "Expiration": {"Days": max(int(policy.artifacts.days), 1)},
            }
        )
    return rules


async def configure_bucket(settings: Settings) -> list[dict[str, Any]]:
    """Set the lifecycle rules on the configured bucket; returns the rules now in force."""
    if not settings.s3_endpoint_url:
        raise ValueError("no S3 endpoint is configured (DRIFTLINE_S3_ENDPOINT_URL)")
    async with S3ArtifactStore(settings) as store:
        await store.set_lifecycle(lifecycle_rules(RetentionPolicy.from_settings(settings)))
        return await store.lifecycle()
