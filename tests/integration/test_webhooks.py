"""Webhook deliveries on the real PostgreSQL, sent to a loopback receiver the test allow-lists.

A receiver that is down (503) is retried by the dispatcher on the (shrunk) schedule until
it answers, every attempt is recorded, the signature verifies with `standardwebhooks`
and the webhook id never changes; a final answer stops the retries; an operator lists
and redelivers. Delivery connects to the address that was checked, never to the name.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import ssl
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import trustme
from standardwebhooks import Webhook

from driftline.auth import create_api_key, webhook_secret
from driftline.callbacks import SignedCallbacks
from driftline.contracts.events import MissionCompletedV1
from driftline.contracts.missions import MissionStatus
from driftline.db.models import Mission, WebhookAttempt, WebhookDelivery
from driftline.db.unit_of_work import Database
from driftline.runtime.webhook_dispatcher import WebhookDispatcher
from driftline.settings import Settings
from driftline.webhooks import AttemptVerdict, WebhookSender, generate_secret
from tests.helpers import sample_summary
from tests.pipeline import eventually, run_cli
from tests.receiver import Answer, LoopbackReceiver

TENANT = "jrcc-hooks"


@pytest.fixture
def hook_settings(settings: Settings) -> Settings:
    """Loopback allow-listed for the test receiver; a schedule of seconds, not hours."""
    return settings.model_copy(
        update={
            "webhook_allowlist": ["127.0.0.1"],
            "webhook_retry_schedule_s": [0.0, 0.3, 0.3, 0.3],
            "webhook_retry_after_cap_s": 1.0,
            "webhook_poll_interval_s": 0.1,
            "webhook_timeout_s": 5.0,
        }
    )


@pytest.fixture
async def database(hook_settings: Settings) -> AsyncIterator[Database]:
    db = Database(hook_settings)
    async with db.unit_of_work() as uow:
        await create_api_key(uow, TENANT)
    yield db
    await db.close()


async def new_mission(db: Database, status: MissionStatus = MissionStatus.RESULTS_READY) -> Any:
    mission_id = uuid.uuid4()
    async with db.unit_of_work() as uow:
        uow.missions.add(
            Mission(
                id=mission_id,
                tenant=TENANT,
                name="Life raft adrift",
                request={},
                status=status.value,
                stage="postprocess",
                progress=0.9,
            )
        )
    return mission_id


async def set_status(db: Database, mission_id: uuid.UUID, status: MissionStatus) -> None:
    async with db.unit_of_work() as uow:
        mission = await uow.missions.get(mission_id, lock=True)
        assert mission is not None
        mission.status = status.value


def completed(mission_id: uuid.UUID) -> MissionCompletedV1:
    return MissionCompletedV1(
        mission_id=mission_id,
        tenant=TENANT,
        name="Life raft adrift",
        completed_at=datetime.now(UTC),
        artifacts=[],
        summary=sample_summary(),
    )


async def delivery(db: Database, webhook_id: str) -> tuple[WebhookDelivery, list[WebhookAttempt]]:
    async with db.unit_of_work() as uow:
        found = await uow.webhooks.get(webhook_id)
        assert found is not None
        return found, await uow.webhooks.attempts(webhook_id)


async def dispatch_until(
    settings: Settings, db: Database, webhook_id: str, state: str, timeout_s: float = 20
) -> None:
    """Run a dispatcher in the background until the delivery reaches `state`."""
    stop = asyncio.Event()
    task = asyncio.create_task(WebhookDispatcher(settings, db).run(stop))

    async def reached() -> bool:
        return (await delivery(db, webhook_id))[0].state == state

    try:
        await eventually(reached, timeout_s)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_a_receiver_outage_is_retried_until_delivered(
    hook_settings: Settings, database: Database
) -> None:
    mission_id = await new_mission(database)
    webhook_id = f"msg_{uuid.uuid4().hex}"
    callbacks = SignedCallbacks(database)
    async with LoopbackReceiver([503, 503, 200]) as receiver:
        await callbacks.send(receiver.url(), completed(mission_id), webhook_id)
        await callbacks.send(receiver.url(), completed(mission_id), webhook_id)  # stage re-run

        dispatcher = WebhookDispatcher(hook_settings, database)
        assert await dispatcher.dispatch_due() == 0, "waits for the completion to commit"
        assert receiver.received == []

        await set_status(database, mission_id, MissionStatus.COMPLETED)
        await dispatch_until(hook_settings, database, webhook_id, "delivered")

    async with database.unit_of_work() as uow:
        secret = await webhook_secret(uow, TENANT)
    assert secret is not None
    assert [r.headers["webhook-id"] for r in receiver.received] == [webhook_id] * 3
    assert len({r.body for r in receiver.received}) == 1, "the same bytes every attempt"
    for request in receiver.received:
        assert request.method == "POST" and request.path == "/hook"
        payload = Webhook(secret).verify(request.body, request.headers)
        assert payload["type"] == "driftline.mission.completed.v1"
        assert payload["data"]["mission_id"] == str(mission_id)
    gaps = [b.at - a.at for a, b in itertools.pairwise(receiver.received)]
    assert all(gap >= 0.25 for gap in gaps), f"retried on the schedule, not at once: {gaps}"

    row, attempts = await delivery(database, webhook_id)
    assert (row.state, row.attempts, row.last_status) == ("delivered", 3, 200)
    assert row.delivered_at is not None and row.next_attempt_at is None
    assert [a.number for a in attempts] == [1, 2, 3]
    assert [a.status_code for a in attempts] == [503, 503, 200]
    assert [a.verdict for a in attempts] == ["retry", "retry", "delivered"]
    assert [a.error for a in attempts] == ["HTTP 503", "HTTP 503", None]
    assert all(a.address == "127.0.0.1" and a.duration_ms >= 0 for a in attempts)


async def test_retry_after_is_honoured_within_the_cap_and_a_4xx_is_final(
    hook_settings: Settings, database: Database
) -> None:
    mission_id = await new_mission(database, MissionStatus.COMPLETED)
    webhook_id = f"msg_{uuid.uuid4().hex}"
    answers: list[int | Answer] = [Answer(429, {"retry-after": "3600"}), 410, 200]
    async with LoopbackReceiver(answers) as receiver:
        await SignedCallbacks(database).send(receiver.url(), completed(mission_id), webhook_id)
        dispatcher = WebhookDispatcher(hook_settings, database)
        assert await dispatcher.dispatch_due() == 1
        row, _ = await delivery(database, webhook_id)
        assert row.state == "pending" and row.next_attempt_at is not None
        wait = (row.next_attempt_at - row.updated_at).total_seconds()
        assert 0.9 <= wait <= 2.5, f"Retry-After capped at 1 s, above the 0.3 s schedule: {wait}"
        await dispatch_until(hook_settings, database, webhook_id, "failed")
        await asyncio.sleep(1.0)  # the schedule has attempts left: none is made
    assert len(receiver.received) == 2
    row, attempts = await delivery(database, webhook_id)
    assert (row.state, row.attempts, row.last_status) == ("failed", 2, 410)
    assert [a.verdict for a in attempts] == ["retry", "failed"]


async def test_a_mission_that_never_completes_announces_nothing(
    hook_settings: Settings, database: Database
) -> None:
    mission_id = await new_mission(database)
    webhook_id = f"msg_{uuid.uuid4().hex}"
    async with LoopbackReceiver([200]) as receiver:
        await SignedCallbacks(database).send(receiver.url(), completed(mission_id), webhook_id)
        await set_status(database, mission_id, MissionStatus.CANCELLED)
        assert await WebhookDispatcher(hook_settings, database).dispatch_due() == 0
    assert receiver.received == []
    row, attempts = await delivery(database, webhook_id)
    assert row.state == "failed" and attempts == []
    assert "without completing" in (row.last_error or "")


async def test_an_exhausted_schedule_fails_and_the_operator_redelivers(
    hook_settings: Settings, database: Database
) -> None:
    mission_id = await new_mission(database, MissionStatus.COMPLETED)
    webhook_id = f"msg_{uuid.uuid4().hex}"
    async with LoopbackReceiver([503]) as receiver:
        await SignedCallbacks(database).send(receiver.url(), completed(mission_id), webhook_id)
        await dispatch_until(hook_settings, database, webhook_id, "failed")
        assert len(receiver.received) == 4, "one attempt per schedule entry"

        listed = await run_cli(hook_settings, "webhooks", "list", "--failed")
        assert webhook_id in listed and "HTTP 503" in listed
        shown = await run_cli(hook_settings, "webhooks", "show", webhook_id)
        assert shown.count("503") >= 4

        receiver.answers = [Answer(200)]
        out = await run_cli(hook_settings, "webhooks", "redeliver", webhook_id)
        assert "delivered" in out, out
    assert len(receiver.received) == 5
    assert {r.headers["webhook-id"] for r in receiver.received} == {webhook_id}
    row, attempts = await delivery(database, webhook_id)
    assert (row.state, row.attempts, row.schedule_step) == ("delivered", 5, 1)
    assert [a.status_code for a in attempts] == [503] * 4 + [200]
    missing = await run_cli(hook_settings, "webhooks", "list", "--mission", str(uuid.uuid4()))
    assert "0 deliveries" in missing


# -- the connection goes to the checked address ------------------------------------------------


class Resolver:
    """Answers one loopback address for any name, and counts the look-ups."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.calls: list[str] = []

    def __call__(self, host: str, port: int, *_: Any, **__: Any) -> list[tuple[Any, ...]]:
        self.calls.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (self.address, port))]


BODY = json.dumps({"type": "t", "data": {}}).encode()


async def test_https_goes_to_the_checked_address_with_the_original_host_and_sni() -> None:
    ca = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_tls)
    client_tls = ssl.create_default_context()
    ca.configure_trust(client_tls)
    # The system would resolve "localhost" to 127.0.0.1; the (fake) resolver says
    # 127.0.0.2, where the receiver listens: only the checked address answers.
    resolve = Resolver("127.0.0.2")
    sender = WebhookSender(
        timeout_s=5,
        allow_private=False,
        allowlist=["127.0.0.2"],
        resolve=resolve,
        ssl_context=client_tls,
    )
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    async with LoopbackReceiver([204], host="127.0.0.2", tls=server_tls) as receiver:
        url = receiver.url(host="localhost")
        result = await sender.attempt(url, BODY, secret=secret, webhook_id="msg_1")
    assert result.verdict is AttemptVerdict.DELIVERED, result
    assert (result.status, result.address) == (204, "127.0.0.2")
    assert resolve.calls == ["localhost"], "resolved once, by the check"
    assert receiver.server_names == ["localhost"], "TLS server name of the original host"
    [request] = receiver.received
    assert request.headers["host"] == f"localhost:{receiver.port}"
    Webhook(secret).verify(request.body, request.headers)


async def test_an_address_outside_the_allow_list_is_never_connected() -> None:
    async with LoopbackReceiver([200], host="127.0.0.3") as receiver:
        sender = WebhookSender(
            timeout_s=5, allow_private=False, allowlist=["127.0.0.2"], resolve=Resolver("127.0.0.3")
        )
        result = await sender.attempt(
            receiver.url(host="hooks.invalid"), BODY, secret=generate_secret(), webhook_id="msg_2"
        )
    assert result.verdict is AttemptVerdict.FAILED
    assert "127.0.0.3" in (result.error or "") and result.address is None
    assert receiver.received == []
