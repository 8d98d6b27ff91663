"""Signed callbacks of completed missions: find the tenant's secret, deliver, record.

The notify stage only says "call back this URL with this event"; how that is signed,
retried and bookkept lives here, behind the `Callbacks` protocol a unit test can fake.
"""

from __future__ import annotations

import json
from typing import Protocol

import httpx
import structlog

from driftline.auth import webhook_secret
from driftline.contracts.events import MissionCompletedV1
from driftline.db.models import WebhookDelivery
from driftline.db.unit_of_work import Database
from driftline.settings import Settings
from driftline.webhooks import DeliveryResult, deliver

log = structlog.get_logger("driftline.callbacks")


class Callbacks(Protocol):
    """Deliver `completed` to `url` under a webhook id that is stable across redeliveries."""

    async def send(self, url: str, completed: MissionCompletedV1, webhook_id: str) -> None: ...


def webhook_body(completed: MissionCompletedV1) -> bytes:
    """The Standard Webhooks payload: type, timestamp and the event's data."""
    return json.dumps(
        {
            "type": completed.ce_type,
            "timestamp": completed.completed_at.isoformat(),
            "data": completed.model_dump(mode="json"),
        }
    ).encode()


class SignedCallbacks:
    """Best effort with retries; a failing receiver never fails the mission."""

    def __init__(self, settings: Settings, database: Database, http: httpx.AsyncClient) -> None:
        self._settings = settings
        self._db = database
        self._http = http

    async def send(self, url: str, completed: MissionCompletedV1, webhook_id: str) -> None:
        async with self._db.unit_of_work() as uow:
            secret = await webhook_secret(uow, completed.tenant)
        result = DeliveryResult(False, 0, None, "tenant has no signing secret")
        if secret is not None:
            result = await self._deliver(url, webhook_body(completed), secret, webhook_id)
        log.info(
            "webhook.done",
            mission=str(completed.mission_id),
            delivered=result.delivered,
            attempts=result.attempts,
            error=result.last_error,
        )
        async with self._db.unit_of_work() as uow:
            await uow.webhooks.record(
                WebhookDelivery(
                    webhook_id=webhook_id,
                    mission_id=completed.mission_id,
                    url=url,
                    delivered=result.delivered,
                    attempts=result.attempts,
                    last_status=result.last_status,
                    last_error=result.last_error,
                )
            )

    async def _deliver(self, url: str, body: bytes, secret: str, webhook_id: str) -> DeliveryResult:
        settings = self._settings
        return await deliver(
            url,
            body,
            secret=secret,
            webhook_id=webhook_id,
            max_attempts=settings.webhook_max_attempts,
            backoff_s=settings.retry_backoff_s,
            timeout_s=settings.webhook_timeout_s,
            client=self._http,
            allow_private=settings.webhook_allow_private,
            allowlist=settings.webhook_allowlist,
        )
