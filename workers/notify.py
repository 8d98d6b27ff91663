"""Stage 5, notify: publish the public `completed` event and call the signed webhook.

The webhook is best effort with retries: a failing receiver never fails the mission.
Its `webhook-id` derives from the input event id, so a redelivery re-sends the same id
and receivers can drop the duplicate.
"""

from __future__ import annotations

import json

import structlog

from driftline.auth import webhook_secret
from driftline.contracts.envelope import Envelope
from driftline.contracts.events import MissionCompletedV1, ResultsReadyV1
from driftline.contracts.missions import MissionStatus, utcnow
from driftline.db.models import WebhookDelivery
from driftline.db.unit_of_work import Database
from driftline.runtime.stage import Stage, StageContext, StageOutcome
from driftline.webhooks import deliver

log = structlog.get_logger("driftline.notify")


async def notify(event: Envelope[ResultsReadyV1], ctx: StageContext) -> StageOutcome:
    """Emit `mission.completed` and deliver the callback, if any."""
    data = event.data
    completed = MissionCompletedV1(
        mission_id=data.mission_id,
        tenant=data.tenant,
        name=data.request.name,
        external_ref=data.request.external_ref,
        completed_at=utcnow(),
        artifacts=data.artifacts,
        summary=data.summary,
    )
    if data.request.callback_url is not None:
        await _call_back(str(data.request.callback_url), completed, event, ctx)
    return StageOutcome(status=MissionStatus.COMPLETED, emits=[completed], completed=True)


async def _call_back(
    url: str, completed: MissionCompletedV1, event: Envelope[ResultsReadyV1], ctx: StageContext
) -> None:
    database: Database = ctx.service("database")
    webhook_id = f"msg_{event.id.hex}"
    body = json.dumps(
        {
            "type": completed.ce_type,
            "timestamp": completed.completed_at.isoformat(),
            "data": completed.model_dump(mode="json"),
        }
    ).encode()
    settings = ctx.settings
    async with database.unit_of_work() as uow:
        secret = await webhook_secret(uow, completed.tenant)
    last_status: int | None = None
    last_error: str | None = "tenant has no signing secret"
    delivered, attempts = False, 0
    if secret is not None:
        result = await deliver(
            url,
            body,
            secret=secret,
            webhook_id=webhook_id,
            max_attempts=settings.webhook_max_attempts,
            backoff_s=settings.retry_backoff_s,
            timeout_s=settings.webhook_timeout_s,
            client=ctx.http,
            allow_private=settings.webhook_allow_private,
            allowlist=settings.webhook_allowlist,
        )
        delivered, attempts = result.delivered, result.attempts
        last_status, last_error = result.last_status, result.last_error
    log.info(
        "webhook.done",
        mission=str(completed.mission_id),
        delivered=delivered,
        attempts=attempts,
        error=last_error,
    )
    async with database.unit_of_work() as uow:
        await uow.session.merge(
            WebhookDelivery(
                webhook_id=webhook_id,
                mission_id=completed.mission_id,
                url=url,
                delivered=delivered,
                attempts=attempts,
                last_status=last_status,
                last_error=last_error,
            )
        )


STAGE = Stage(name="notify", consumes=ResultsReadyV1, run=notify)
