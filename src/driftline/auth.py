"""API keys and tenants: keys are random, shown once, stored as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass

from driftline.contracts.missions import utcnow
from driftline.db.models import ApiKey
from driftline.db.unit_of_work import UnitOfWork
from driftline.webhooks import generate_secret

KEY_PREFIX = "dl_"


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def generate_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


async def create_api_key(uow: UnitOfWork, tenant: str, label: str | None = None) -> str:
    """Create `tenant` if new and a key for it; returns the plain key (never stored)."""
    await uow.tenants.ensure(tenant, generate_secret())
    api_key = generate_api_key()
    uow.tenants.add_key(tenant, hash_api_key(api_key), label)
    return api_key


async def tenant_for_key(uow: UnitOfWork, api_key: str) -> str | None:
    return await uow.tenants.tenant_for_key(hash_api_key(api_key))


@dataclass(frozen=True)
class Caller:
    """Who sent a request: the tenant and which of its keys (limits are per key)."""

    tenant: str
    key_id: uuid.UUID


async def authenticate(uow: UnitOfWork, api_key: str) -> Caller | None:
    """The caller behind `api_key`, or None for an unknown or revoked key."""
    found = await uow.tenants.caller_for_key(hash_api_key(api_key))
    return Caller(tenant=found[0], key_id=found[1]) if found is not None else None


async def list_api_keys(uow: UnitOfWork, tenant: str | None = None) -> list[ApiKey]:
    return await uow.tenants.keys(tenant)


async def revoke_api_key(uow: UnitOfWork, key_id: uuid.UUID) -> ApiKey | None:
    """Revoke at once: the next request with the key answers 401 (nothing caches keys)."""
    return await uow.tenants.revoke_key(key_id, utcnow())


async def webhook_secret(uow: UnitOfWork, tenant: str) -> str | None:
    return await uow.tenants.webhook_secret(tenant)
