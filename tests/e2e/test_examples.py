"""The integrators' examples against a real pipeline: `examples/consumer.py` reads the
public topics (once per `ce_id`, past a record it cannot parse), and
`examples/webhook_receiver.py` verifies, acknowledges and de-duplicates the signed
callback (the receiver on 127.0.0.1, allow-listed for this test)."""

from __future__ import annotations

import asyncio
import importlib.util
import threading
import time
from types import ModuleType
from typing import Any

import httpx

from driftline.auth import webhook_secret
from driftline.contracts.envelope import header_map
from driftline.settings import PROJECT_ROOT, Settings
from driftline.webhooks import signed_headers
from tests.pipeline import (
    eventually,
    mission_body,
    produce_raw,
    read_topic,
    records_for,
    running_pipeline,
)


def example(name: str) -> ModuleType:
    path = PROJECT_ROOT / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_consumer_and_webhook_receiver_examples(
    pipeline_settings: Settings, simulation_pool: Any
) -> None:
    consumer = example("consumer")
    receiver_module = example("webhook_receiver")
    settings = pipeline_settings.model_copy(update={"webhook_allowlist": ["127.0.0.1"]})
    async with running_pipeline(settings, simulation_pool=simulation_pool) as p:
        async with p.database.unit_of_work() as uow:
            secret = await webhook_secret(uow, p.tenant)
        assert secret is not None
        handled: list[dict[str, Any]] = []
        receiver = receiver_module.WebhookReceiver(("127.0.0.1", 0), secret, handled.append)
        serving = threading.Thread(target=receiver.serve_forever, daemon=True)
        serving.start()
        hook = f"http://127.0.0.1:{receiver.server_address[1]}/driftline"

        board = consumer.MissionBoard()
        stop = asyncio.Event()
        consuming = asyncio.create_task(
            consumer.consume(
                p.settings.kafka_bootstrap_servers,
                f"{p.settings.topic_prefix}example-map-server",
                board,
                stop,
                prefix=p.settings.topic_prefix,
            )
        )
        try:
            completed = await p.submit(
                mission_body(duration_hours=6, particles=200, callback_url=hook)
            )
            on_land = mission_body(duration_hours=6, particles=200)
            on_land["last_known_position"].update(lat=60.39, lon=5.32)  # Bergen
            failed = await p.submit(on_land)

            async def settled() -> bool:
                done, lost = board.mission(completed), board.mission(failed)
                return bool(
                    done and done["status"] == "completed" and lost and lost["status"] == "failed"
                )

            await eventually(settled, timeout_s=180)
            assert board.count("results", completed) == 1
            assert board.count("alerts", failed) == 1 and board.count("alerts") == 1
            await eventually(_true_when(lambda: len(handled) == 1), timeout_s=60)
            assert handled[0]["data"]["mission_id"] == completed
            assert handled[0]["type"] == "driftline.mission.completed.v1"

            # A redelivered completion (same ce_id) changes nothing; a garbage record is
            # set aside and the consumer goes on.
            topic = p.topic("missions.completed")
            records = records_for(
                await read_topic(p.settings, topic, until=lambda rs: len(rs) >= 1), completed
            )
            applied = board.count("processed_events")
            original = records[0]
            await produce_raw(
                p.settings,
                topic,
                original.value,
                key=original.key,
                headers=list(original.headers),
            )
            await produce_raw(p.settings, topic, b"not an event", key=original.key)
            await eventually(_true_when(lambda: board.count("rejected") == 1), timeout_s=60)
            assert board.count("processed_events") == applied
            assert header_map(original.headers)["ce_subject"] == completed

            await _webhook_is_deduplicated(hook, secret, handled)
        finally:
            stop.set()
            await asyncio.wait_for(consuming, 30)
            receiver.shutdown()
            receiver.server_close()


def _true_when(check: Any) -> Any:
    async def probe() -> bool:
        return bool(check())

    return probe


async def _webhook_is_deduplicated(hook: str, secret: str, handled: list[Any]) -> None:
    """The same delivery again is acknowledged and not handled twice; a forged one is not."""
    webhook_id = "msg_" + "0" * 32
    body = b'{"type": "driftline.mission.completed.v1", "timestamp": "t", "data": {}}'
    headers = signed_headers(secret, webhook_id, body, time.time())
    async with httpx.AsyncClient(timeout=10) as client:
        first = await client.post(hook, content=body, headers=headers)
        again = await client.post(hook, content=body, headers=headers)
        forged = await client.post(
            hook, content=body, headers={**headers, "webhook-signature": "v1,Zm9yZ2Vk"}
        )
    assert (first.status_code, again.status_code, forged.status_code) == (204, 204, 401)
    await eventually(_true_when(lambda: len(handled) == 2), timeout_s=10)
    await asyncio.sleep(0.5)
    assert len(handled) == 2  # the original delivery and this one, not its duplicate
