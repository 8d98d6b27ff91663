"""The runner's logic as pure code: commit points, lanes, backpressure, retry policy and
what happens to one record for each kind of failure (with fake effects and dead letters).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import ConsumerRecord

from driftline.contracts.envelope import Envelope, stage_source
from driftline.contracts.events import EventData, MissionRequestedV1
from driftline.contracts.missions import MissionCreate
from driftline.errors import (
    DatabaseUnavailable,
    InvalidMission,
    PermanentError,
    TransientError,
    UnparseableRecordError,
)
from driftline.runtime.dead_letters import Failure, dead_letter_headers
from driftline.runtime.offsets import PAUSE_ABOVE, RESUME_BELOW, Lanes, OffsetTracker
from driftline.runtime.records import RecordHandler
from driftline.runtime.retry import ExponentialRetry, OutageBudget, Verdict, classify
from tests.helpers import mission_body
from workers import STAGE_REGISTRY

# -- offsets -----------------------------------------------------------------------------


def test_commit_point_is_the_lowest_unfinished_offset() -> None:
    offsets: OffsetTracker[str] = OffsetTracker()
    for offset in (10, 11, 12):
        offsets.dispatched("p0", offset)
    offsets.finished("p0", 11)
    assert offsets.commits_due() == {"p0": 10}, "10 is still running: nothing past it"
    offsets.committed({"p0": 10})
    assert offsets.commits_due() == {}, "nothing new"
    offsets.finished("p0", 10)
    assert offsets.commits_due() == {"p0": 12}
    offsets.finished("p0", 12)
    assert offsets.commits_due() == {"p0": 13}


def test_partitions_are_independent_and_forgotten_when_revoked() -> None:
    offsets: OffsetTracker[str] = OffsetTracker()
    offsets.dispatched("p0", 5)
    offsets.dispatched("p1", 7)
    offsets.finished("p1", 7)
    assert offsets.commits_due() == {"p0": 5, "p1": 8}
    offsets.forget(["p0"])
    assert offsets.commits_due() == {"p1": 8}


def test_backpressure_pauses_and_resumes_with_hysteresis() -> None:
    offsets: OffsetTracker[str] = OffsetTracker()
    for offset in range(PAUSE_ABOVE + 1):
        offsets.dispatched("p0", offset)
    assert offsets.backpressure() == (["p0"], [])
    assert offsets.backpressure() == ([], []), "already paused"
    for offset in range(PAUSE_ABOVE + 1 - RESUME_BELOW + 1):
        offsets.finished("p0", offset)
    assert offsets.backpressure() == ([], ["p0"])


def test_lanes_keep_one_key_in_order_and_run_keys_apart() -> None:
    lanes: Lanes[str, str] = Lanes()
    first = lanes.add("p0", b"mission-a", "a1")
    assert first is not None, "an idle lane starts a worker"
    assert lanes.add("p0", b"mission-a", "a2") is None, "queued behind a1"
    assert lanes.add("p0", b"mission-b", "b1") is not None, "another mission runs at once"
    lane_key, lane = first
    assert list(lane.records) == ["a1", "a2"]
    lanes.done(lane_key, lane)
    assert len(lanes) == 1


# -- policies ----------------------------------------------------------------------------


def test_exponential_retry_grows_caps_and_gives_up() -> None:
    retry = ExponentialRetry(base_s=1.0, max_s=5.0, max_attempts=3, jitter=0.0)
    assert [retry.delay(a) for a in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]
    assert not retry.exhausted(2) and retry.exhausted(3)
    jittered = ExponentialRetry(base_s=1.0, max_s=5.0, max_attempts=3, jitter=0.2)
    assert all(0.8 <= jittered.delay(1) <= 1.2 for _ in range(100))


@pytest.mark.parametrize(
    "bad",
    [
        {"base_s": 0, "max_s": 1, "max_attempts": 1},
        {"base_s": 2, "max_s": 1, "max_attempts": 1},
        {"base_s": 1, "max_s": 1, "max_attempts": 0},
        {"base_s": 1, "max_s": 1, "max_attempts": 1, "jitter": 1.0},
    ],
)
def test_retry_policy_refuses_nonsense(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ExponentialRetry(**bad)


def test_verdict_follows_the_error_class() -> None:
    assert classify(InvalidMission("x", "y")) is Verdict.FAIL
    assert classify(DatabaseUnavailable("down")) is Verdict.OUTAGE
    assert classify(TransientError("flaky")) is Verdict.RETRY
    assert classify(RuntimeError("bug")) is Verdict.RETRY
    assert classify(KeyError("bug")) is Verdict.RETRY
    assert classify(OverflowError("date value out of range")) is Verdict.FAIL
    assert classify(ValueError("unsupported variable")) is Verdict.FAIL
    assert classify(UnparseableRecordError("junk")) is Verdict.DEAD_LETTER


# -- one record --------------------------------------------------------------------------


@dataclass
class ScriptedEffects:
    """Raises the scripted errors in turn, then succeeds."""

    errors: list[Exception]
    applied: int = 0
    failed: list[PermanentError] = field(default_factory=list)
    held: list[str] = field(default_factory=list)

    async def apply(self, envelope: Envelope[EventData]) -> None:
        if self.errors:
            raise self.errors.pop(0)
        self.applied += 1

    async def fail(self, envelope: Envelope[EventData], exc: PermanentError) -> None:
        self.failed.append(exc)

    async def hold(self, envelope: Envelope[EventData], why: str) -> None:
        self.held.append(why)


@dataclass
class CollectedDeadLetters:
    sent: list[tuple[ConsumerRecord[bytes, bytes], Failure]] = field(default_factory=list)

    async def send(self, record: ConsumerRecord[bytes, bytes], failure: Failure) -> None:
        self.sent.append((record, failure))


def _record(value: bytes | None = None, headers: Any = None) -> ConsumerRecord[bytes, bytes]:
    data = MissionRequestedV1(
        mission_id=uuid.uuid4(),
        tenant="t",
        requested_at=datetime.now(UTC),
        request=MissionCreate.model_validate(mission_body()),
    )
    envelope = Envelope(data=data, source=stage_source("api"))
    return ConsumerRecord(
        topic="x.missions.requested",
        partition=0,
        offset=42,
        timestamp=0,
        timestamp_type=0,
        key=envelope.key,
        value=envelope.value() if value is None else value,
        checksum=None,
        serialized_key_size=0,
        serialized_value_size=0,
        headers=envelope.headers() if headers is None else headers,
    )


def _handler(
    errors: list[Exception], *, max_attempts: int = 3, outage_s: float = 60
) -> tuple[RecordHandler, ScriptedEffects, CollectedDeadLetters]:
    effects, letters = ScriptedEffects(errors), CollectedDeadLetters()
    retry = ExponentialRetry(base_s=0.001, max_s=0.002, max_attempts=max_attempts)
    handler = RecordHandler(
        STAGE_REGISTRY["validate"], effects, letters, retry, OutageBudget(outage_s)
    )
    return handler, effects, letters


async def test_transient_errors_are_retried_then_applied() -> None:
    handler, effects, letters = _handler([TransientError("a"), TransientError("b")])
    await handler.handle(_record())
    assert effects.applied == 1 and letters.sent == []


async def test_attempts_exhausted_go_to_the_dead_letter_topic() -> None:
    handler, effects, letters = _handler([RuntimeError(str(n)) for n in range(5)])
    await handler.handle(_record())
    [(record, failure)] = letters.sent
    assert record.offset == 42 and failure.attempts == 3
    assert isinstance(failure.error, RuntimeError) and effects.applied == 0
    [why] = effects.held
    assert "held after 3 attempt(s) (RuntimeError: 2)" in why
    assert "x.missions.requested.dlq" in why and "dlq replay" in why


async def test_an_outage_does_not_spend_attempts() -> None:
    outages: list[Exception] = [DatabaseUnavailable("restarting") for _ in range(10)]
    handler, effects, letters = _handler([*outages, TransientError("once")], max_attempts=2)
    await handler.handle(_record())
    assert effects.applied == 1 and letters.sent == [], "10 outages + 1 failure < 2 attempts"


async def test_an_outage_longer_than_its_budget_is_dead_lettered() -> None:
    outages: list[Exception] = [DatabaseUnavailable("gone") for _ in range(1000)]
    handler, _effects, letters = _handler(outages, max_attempts=2, outage_s=0.01)
    await handler.handle(_record())
    [(_record_sent, failure)] = letters.sent
    assert isinstance(failure.error, DatabaseUnavailable)


async def test_permanent_error_fails_the_mission_at_once() -> None:
    handler, effects, letters = _handler([InvalidMission("position_on_land", "on land")])
    await handler.handle(_record())
    assert [e.reason for e in effects.failed] == ["position_on_land"]
    assert effects.applied == 0 and letters.sent == []


async def test_deterministic_error_fails_the_mission_in_words() -> None:
    handler, effects, letters = _handler([OverflowError("date value out of range")])
    await handler.handle(_record())
    [failure] = effects.failed
    assert failure.reason == "invalid_data"
    assert "OverflowError: date value out of range" in failure.detail
    assert letters.sent == [] and effects.held == []


async def test_unreadable_record_goes_straight_to_the_dead_letter_topic() -> None:
    handler, effects, letters = _handler([])
    await handler.handle(_record(value=b"\x00 not json"))
    [(_record_sent, failure)] = letters.sent
    assert isinstance(failure.error, UnparseableRecordError) and failure.attempts == 1
    assert effects.applied == 0


def test_dead_letter_headers_keep_ce_headers_and_replace_stale_dlq_ones() -> None:
    record = _record()
    record.headers = [*record.headers, ("dlq_stage", b"stale")]
    now = datetime(2024, 1, 1, tzinfo=UTC)
    headers = dead_letter_headers(
        record, group="g", stage="validate", failure=Failure(KeyError("k"), 2, now, now)
    )
    names = [k for k, _ in headers]
    assert names.count("dlq_stage") == 1 and "ce_id" in names
    values = dict(headers)
    assert values["dlq_original_offset"] == b"42"
    assert values["dlq_error_type"] == b"KeyError"
    assert values["dlq_first_failure_time"] == b"2024-01-01T00:00:00Z"
