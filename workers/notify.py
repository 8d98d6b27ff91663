"""Stage 5, notify: publish the public `completed` event and call the signed webhook.

The webhook's `webhook-id` derives from the input event id, so a redelivery re-sends the
same id and receivers can drop the duplicate.
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
        await callbacks.send(str(data.request.callback_url), completed, webhook_id_for(event))
    return StageOutcome(status=MissionStatus.COMPLETED, emits=[completed], completed=True)


STAGE = Stage(name="notify", consumes=ResultsReadyV1, run=notify)
