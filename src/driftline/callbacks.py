"""Signed callbacks of completed missions: what the notify stage asks for, and its record.

The notify stage only says "call back this URL with this event"; `SignedCallbacks`
records that as a pending delivery (idempotent on the stable webhook id) and returns at
once. Sending, signing, retrying over hours and recording each attempt is the webhook
dispatcher's (`runtime/webhook_dispatcher.py`), never the stage's: a receiver that is
down does not hold a pipeline lane.
"""

from __future__ import annotations

import json
from typing import Protocol

import structlog

from driftline.contracts.events import MissionCompletedV1
from driftline.contracts.missions import utcnow
from driftline.db.unit_of_work import Database

log = structlog.get_logger("driftline.callbacks")


class Callbacks(Protocol):
    """Have `completed` delivered to `url` under a webhook id that is stable across
    redeliveries of the stage's input (the same id schedules one delivery, once)."""

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
    """Schedules a signed callback; the dispatcher sends it once the completion commits."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def send(self, url: str, completed: MissionCompletedV1, webhook_id: str) -> None:
        async with self._db.unit_of_work() as uow:
            scheduled = await uow.webhooks.enqueue(
                webhook_id=webhook_id,
                mission_id=completed.mission_id,
                url=url,
                payload=webhook_body(completed).decode(),
                due=utcnow(),
            )
        log.info(
            "webhook.scheduled" if scheduled else "webhook.already_scheduled",
            mission=str(completed.mission_id),
            webhook_id=webhook_id,
        )
