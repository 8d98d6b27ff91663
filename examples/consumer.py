"""A downstream consumer of Driftline's public topics: a template for integrators.

It reads `driftline.missions.completed`, `.failed` and `.status` with a consumer group of
its own, parses every record with the CloudEvents SDK's Kafka binding (binary mode: the
attributes are `ce_` headers, the value is the event's JSON data), and keeps a small
board of missions in SQLite:

* **De-duplicated by `ce_id`.** Driftline delivers public events at least once; a
  redelivered or replayed event keeps its `ce_id`. The id is recorded in the same
  transaction as the effect, so an event is applied once however often it arrives.
* **Committed after handling.** Offsets are committed only once a batch's effects are
  stored, so a crash re-reads (and de-duplicates) instead of losing events.
* **`failed`**: a mission that cannot be answered, with a machine `reason` and a
  sentence in `detail`; this consumer raises an alert (page a coordinator).
* **`status`**: every state change, in order per mission within the topic; completion
  and failure travel on other topics, so a late status never overwrites a final one.
* A record that cannot be parsed is set aside and never stops the consumer.

Run it (needs `aiokafka` and `cloudevents`):

    python examples/consumer.py --bootstrap 127.0.0.1:9092 --group map-server --db board.db
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sqlite3
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary_event

PUBLIC_TOPICS = ("missions.completed", "missions.failed", "missions.status")
FINAL = ("completed", "failed", "cancelled")

SCHEMA = """
CREATE TABLE IF NOT EXISTS processed_events (ce_id TEXT PRIMARY KEY, ce_type TEXT, at TEXT);
CREATE TABLE IF NOT EXISTS missions (
    mission_id TEXT PRIMARY KEY, tenant TEXT, status TEXT, stage TEXT, progress REAL,
    updated_at TEXT);
CREATE TABLE IF NOT EXISTS results (
    mission_id TEXT PRIMARY KEY, name TEXT, area_90_km2 REAL, centroid_lat REAL,
    centroid_lon REAL, map_href TEXT);
CREATE TABLE IF NOT EXISTS alerts (mission_id TEXT, stage TEXT, reason TEXT, detail TEXT);
CREATE TABLE IF NOT EXISTS rejected (topic TEXT, partition INTEGER, offset INTEGER, error TEXT);
"""


def parse(record: ConsumerRecord[bytes, bytes]) -> BaseCloudEvent:
    """One Kafka record as a CloudEvent (the SDK reads the `ce_` headers)."""
    headers = {name: value or b"" for name, value in record.headers or ()}
    message = KafkaMessage(headers=headers, key=record.key, value=record.value or b"")
    return from_binary_event(message)


class MissionBoard:
    """The consumer's own state: what it knows of each mission, in SQLite."""

    def __init__(self, path: Path | str = ":memory:") -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.executescript(SCHEMA)

    def handle(self, event: BaseCloudEvent) -> bool:
        """Apply `event` once; False when its `ce_id` was applied before."""
        data: Any = event.get_data()
        self.db.execute("BEGIN")
        try:
            try:
                self.db.execute(
                    "INSERT INTO processed_events VALUES (?, ?, ?)",
                    (event.get_id(), event.get_type(), str(event.get_time())),
                )
            except sqlite3.IntegrityError:  # seen before: a redelivery or a replay
                self.db.execute("ROLLBACK")
                return False
            handler = HANDLERS.get(event.get_type())
            if handler is not None:  # a newer type (say .v2) is skipped, not fatal
                handler(self.db, data)
            self.db.execute("COMMIT")
            return True
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def reject(self, record: ConsumerRecord[bytes, bytes], error: Exception) -> None:
        self.db.execute(
            "INSERT INTO rejected VALUES (?, ?, ?, ?)",
            (record.topic, record.partition, record.offset, f"{type(error).__name__}: {error}"),
        )

    def mission(self, mission_id: str) -> dict[str, Any] | None:
        self.db.row_factory = sqlite3.Row
        row = self.db.execute("SELECT * FROM missions WHERE mission_id = ?", (mission_id,))
        found = row.fetchone()
        self.db.row_factory = None
        return dict(found) if found else None

    def count(self, table: str, mission_id: str | None = None) -> int:
        where, args = ("WHERE mission_id = ?", (mission_id,)) if mission_id else ("", ())
        return int(self.db.execute(f"SELECT count(*) FROM {table} {where}", args).fetchone()[0])


def _set_status(db: sqlite3.Connection, data: dict[str, Any], status: str, at: str) -> None:
    db.execute(
        "INSERT INTO missions VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (mission_id) DO UPDATE "
        "SET status = excluded.status, stage = excluded.stage, progress = excluded.progress, "
        "updated_at = excluded.updated_at",
        (data["mission_id"], data["tenant"], status, data.get("stage", ""), 1.0, at),
    )


def on_completed(db: sqlite3.Connection, data: dict[str, Any]) -> None:
    """The answer: keep the figures a map server shows and the link to the map."""
    _set_status(db, {**data, "stage": "notify"}, "completed", data["completed_at"])
    summary = data["summary"]
    links = {a["name"]: a["href"] for a in data["artifacts"]}
    db.execute(
        "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?)",
        (
            data["mission_id"],
            data["name"],
            summary["area_km2"].get("90"),
            summary["centroid"]["lat"],
            summary["centroid"]["lon"],
            links.get("products/map.png"),
        ),
    )


def on_failed(db: sqlite3.Connection, data: dict[str, Any]) -> None:
    """No answer will come: tell a person, with Driftline's own words."""
    _set_status(db, data, "failed", data["failed_at"])
    db.execute(
        "INSERT INTO alerts VALUES (?, ?, ?, ?)",
        (data["mission_id"], data["stage"], data["reason"], data["detail"]),
    )
    print(f"ALERT mission {data['mission_id']} failed at {data['stage']}: {data['detail']}")


def on_status(db: sqlite3.Connection, data: dict[str, Any]) -> None:
    """Progress for a live view; never moves a mission back from a final status."""
    known = db.execute(
        "SELECT status FROM missions WHERE mission_id = ?", (data["mission_id"],)
    ).fetchone()
    if known is not None and known[0] in FINAL:
        return
    db.execute(
        "INSERT INTO missions VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (mission_id) DO UPDATE "
        "SET status = excluded.status, stage = excluded.stage, progress = excluded.progress, "
        "updated_at = excluded.updated_at",
        (
            data["mission_id"],
            data["tenant"],
            data["status"],
            data["stage"],
            data["progress"],
            data["at"],
        ),
    )


HANDLERS = {
    "driftline.mission.completed.v1": on_completed,
    "driftline.mission.failed.v1": on_failed,
    "driftline.mission.status.v1": on_status,
}


async def consume(
    bootstrap: str,
    group: str,
    board: MissionBoard,
    stop: asyncio.Event,
    *,
    prefix: str = "driftline.",
) -> None:
    """Consume the public topics into `board` until `stop` is set."""
    consumer = AIOKafkaConsumer(
        *(f"{prefix}{suffix}" for suffix in PUBLIC_TOPICS),
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,  # commit after the effects are stored, never before
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    try:
                        event = parse(record)
                    except Exception as exc:  # not a CloudEvent: set aside, carry on
                        board.reject(record, exc)
                        continue
                    board.handle(event)
            if batch:
                await consumer.commit()
    finally:
        await consumer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--group", default="example-consumer")
    parser.add_argument("--prefix", default="driftline.")
    parser.add_argument("--db", default="board.db")
    args = parser.parse_args()
    board = MissionBoard(args.db)

    async def run() -> None:
        stop = asyncio.Event()
        with contextlib.suppress(asyncio.CancelledError):
            await consume(args.bootstrap, args.group, board, stop, prefix=args.prefix)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    print(json.dumps({"missions": board.count("missions"), "alerts": board.count("alerts")}))


if __name__ == "__main__":
    main()
