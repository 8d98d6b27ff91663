"""CloudEvents binary-mode mapping: what goes on the wire and what comes back."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from driftline.contracts.envelope import Envelope, follow, header_map, parse_record
from driftline.contracts.events import MissionRequestedV1, MissionValidatedV1
from driftline.contracts.missions import MissionCreate
from driftline.errors import UnparseableRecordError

REQUEST = MissionCreate.model_validate(
    {
        "name": "Fishing vessel overdue",
        "object_type": "LIFE-RAFT-NB-1",
        "last_known_position": {"lat": 60.0, "lon": 3.0, "time": "2024-01-01T12:00:00Z"},
    }
)


def _requested() -> Envelope[MissionRequestedV1]:
    data = MissionRequestedV1(
        mission_id=uuid.uuid4(), tenant="t1", requested_at=datetime.now(UTC), request=REQUEST
    )
    return Envelope(data=data, source="/driftline/api")


def test_headers_carry_every_cloudevents_attribute() -> None:
    envelope = _requested()
    headers = header_map(envelope.headers())
    assert headers["ce_specversion"] == "1.0"
    assert headers["ce_id"] == str(envelope.id)
    assert headers["ce_type"] == "driftline.mission.requested.v1"
    assert headers["ce_source"] == "/driftline/api"
    assert headers["ce_subject"] == str(envelope.data.mission_id)
    assert headers["ce_time"].endswith("Z")
    assert headers["content-type"] == "application/json"
    assert headers["traceparent"].startswith("00-")
    assert envelope.key == str(envelope.data.mission_id).encode()


def test_round_trip_keeps_id_data_and_trace() -> None:
    envelope = _requested()
    parsed = parse_record(envelope.headers(), envelope.value())
    assert parsed.id == envelope.id
    assert parsed.data == envelope.data
    assert parsed.traceparent == envelope.traceparent


def test_followed_event_ids_are_deterministic_and_trace_continues() -> None:
    cause = _requested()
    data = MissionValidatedV1(
        mission_id=cause.data.mission_id,
        tenant="t1",
        request=REQUEST,
        object_type_id=26,
        object_type_key="LIFE-RAFT-NB-1",
        seed=7,
    )
    first = follow(data, cause=cause, stage="validate")
    again = follow(data, cause=cause, stage="validate")
    assert first.id == again.id != cause.id
    assert first.traceparent.split("-")[1] == cause.traceparent.split("-")[1]
    assert first.source == "/driftline/validate"


@pytest.mark.parametrize(
    ("headers", "value", "why"),
    [
        ([], b"{}", "ce_specversion"),
        ([("ce_specversion", b"1.0"), ("ce_type", b"nope")], b"{}", "unknown ce_type"),
        (
            [
                ("ce_specversion", b"1.0"),
                ("ce_type", b"driftline.mission.requested.v1"),
                ("ce_id", b"not-a-uuid"),
                ("ce_time", b"2024-01-01T00:00:00Z"),
            ],
            b"{}",
            "ValueError",
        ),
    ],
)
def test_garbage_is_unparseable(headers: list[tuple[str, bytes]], value: bytes, why: str) -> None:
    with pytest.raises(UnparseableRecordError, match=why):
        parse_record(headers, value)


def test_bad_json_value_is_unparseable() -> None:
    envelope = _requested()
    with pytest.raises(UnparseableRecordError):
        parse_record(envelope.headers(), b"\xff not json")
    bad = json.loads(envelope.value())
    bad["tenant"] = None
    with pytest.raises(UnparseableRecordError):
        parse_record(envelope.headers(), json.dumps(bad).encode())
