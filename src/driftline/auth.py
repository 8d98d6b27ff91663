"""API keys and tenants: keys are random, shown once, stored as SHA-256 hashes."""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from driftline.db.models import ApiKey, Tenant
from driftline.db.unit_of_work import UnitOfWork

KEY_PREFIX = "dl_"


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def generate_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def generate_webhook_secret() -> str:
    """A Standard Webhooks secret: `whsec_` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


async def create_api_key(uow: UnitOfWork, tenant: str, label: str | None = None) -> str:
    """Create `tenant` if new and a key for it; returns the plain key (never stored)."""
    await uow.session.execute(
        insert(Tenant)
        .values(name=tenant, webhook_secret=generate_webhook_secret())
        .on_conflict_do_nothing()
    )
    api_key = generate_api_key()
    uow.session.add(
        ApiKey(id=uuid.uuid4(), tenant=tenant, key_hash=hash_api_key(api_key), label=label)
    )
    return api_key


async def tenant_for_key(uow: UnitOfWork, api_key: str) -> str | None:
    stmt = select(ApiKey.tenant).where(
        ApiKey.key_hash == hash_api_key(api_key), ApiKey.revoked_at.is_(None)
    )
    return (await uow.session.execute(stmt)).scalar_one_or_none()


async def webhook_secret(uow: UnitOfWork, tenant: str) -> str | None:
    stmt = select(Tenant.webhook_secret).where(Tenant.name == tenant)
    return (await uow.session.execute(stmt)).scalar_one_or_none()
