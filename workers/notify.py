"""Stage 5, notify: publish the public `completed` event and schedule the signed webhook.

The webhook's `webhook-id` derives from the input event id, so a redelivered event
schedules the same delivery (once) and receivers can drop duplicate attempts. Sending
and retrying is the webhook dispatcher's, not this stage's.
"""

from __future__ import annotations

from driftline.callbacks import Callbacks
from driftline.contracts.envelope import Envelope
from driftline.contracts.events import MissionCompletedV1, ResultsReadyV1
from driftline.contracts.missions import MissionStatus, utcnow
from driftline.runtime.stage import Stage, StageOutcome


def webhook_id_for(event: Envelope[ResultsReadyV1]) -> str:
    return f"msg_{event.id.hex}"


async def notify(event: Envelope[ResultsReadyV1], *, callbacks: Callbacks) -> StageOutcome:
    """Emit `mission.completed` and schedule the callback, if any."""
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
        await callbacks.send(str(data.request.callback_url), completed, webhook_id_for(event))
    return StageOutcome(status=MissionStatus.COMPLETED, emits=[completed], completed=True)


STAGE = Stage(name="notify", consumes=ResultsReadyV1, run=notify)
