"""The API edge as pure functions: trace context, Last-Event-ID, bearer keys, media types,
body limits, token buckets, stream slots and the mission time window."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from starlette.datastructures import Headers

from driftline.api.guard import bearer_token, check_body, declared_length, media_type
from driftline.api.ratelimit import RateLimiter, RatePolicy
from driftline.api.streams import MAX_EVENT_ID, StreamSlots, parse_last_event_id
from driftline.contracts.envelope import child_traceparent, parse_traceparent
from driftline.contracts.missions import MissionCreate
from driftline.missions import TimeWindow, decode_cursor, encode_cursor
from tests.helpers import mission_body

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"00-{TRACE}-{SPAN}-01", (TRACE, "01")),
        (f"01-{TRACE}-{SPAN}-01-future-fields", (TRACE, "01")),
        (f"00-{TRACE}-{SPAN}-01-extra", None),  # version 00 has exactly four fields
        (f"ff-{TRACE}-{SPAN}-01", None),
        (f"00-{TRACE}-{SPAN}-0100", None),
        (f"00-{TRACE}0-{SPAN}-01", None),
        (f"00-{TRACE.upper()}-{SPAN}-01", None),
        (f"00-{'0' * 32}-{SPAN}-01", None),
        (f"00-{TRACE}-{'0' * 16}-01", None),
        (f"00-{TRACE}-{SPAN}-0g", None),
        (f"00-{TRACE}-{SPAN}-01\n", None),
        ("", None),
        (None, None),
    ],
)
def test_traceparent_is_parsed_strictly(value: str | None, expected: object) -> None:
    assert parse_traceparent(value) == expected


def test_child_traceparent_keeps_a_valid_trace_and_replaces_an_invalid_one() -> None:
    child = child_traceparent(f"00-{TRACE}-{SPAN}-01")
    assert child.startswith(f"00-{TRACE}-") and child.endswith("-01") and SPAN not in child
    fresh = child_traceparent(f"00-{TRACE}-{SPAN}-01{'0' * 1000}")
    assert TRACE not in fresh and parse_traceparent(fresh) is not None and len(fresh) == 55


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("42", 42),
        (" 42 ", 42),
        ("²", 0),
        ("٣", 0),  # an Arabic-Indic digit: isdigit() is True, it is no event id
        ("-1", 0),
        ("1e3", 0),
        (str(MAX_EVENT_ID), MAX_EVENT_ID),
        (str(MAX_EVENT_ID + 1), 0),
        ("9" * 40, 0),
        ("", 0),
        (None, 0),
    ],
)
def test_last_event_id(value: str | None, expected: int) -> None:
    assert parse_last_event_id(value) == expected


def test_bearer_token() -> None:
    assert bearer_token("Bearer dl_abc") == "dl_abc"
    assert bearer_token("bearer   dl_abc ") == "dl_abc"
    assert bearer_token("Basic dl_abc") is None
    assert bearer_token("Bearer") is None
    assert bearer_token(None) is None


def test_media_type_and_content_length() -> None:
    assert media_type("Application/JSON; charset=utf-8") == "application/json"
    assert media_type(None) == ""
    assert declared_length(Headers({"content-length": "12"})) == 12
    assert declared_length(Headers({})) is None
    for bad in ("-1", "1e3", "²", "12, 12"):
        with pytest.raises(ValueError):
            declared_length(Headers({"content-length": bad}))


@pytest.mark.parametrize(
    ("method", "headers", "status"),
    [
        ("POST", {"content-length": "10", "content-type": "application/json"}, None),
        ("POST", {"content-length": "0"}, None),  # no body: the route says what is missing
        ("POST", {"content-length": "10", "content-type": "text/plain"}, 415),
        ("POST", {"transfer-encoding": "chunked", "content-type": "application/xml"}, 415),
        ("POST", {"content-length": "10"}, 415),
        ("POST", {"content-length": "2000", "content-type": "application/json"}, 413),
        ("GET", {"content-length": "2000"}, 413),
        ("GET", {"content-length": "10", "content-type": "text/plain"}, None),
        ("POST", {"content-length": "ten"}, 400),
    ],
)
def test_check_body(method: str, headers: dict[str, str], status: int | None) -> None:
    refused = check_body(method, Headers(headers), limit=1024)
    assert (refused.status_code if refused is not None else None) == status


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_bursts_then_refills() -> None:
    clock = Clock()
    limiter = RateLimiter({"write": RatePolicy("write", per_s=2.0, burst=3)}, clock=clock)
    decisions = [limiter.take("k", "write") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert decisions[0].headers() == {
        "RateLimit-Policy": '"write";q=3;w=2',
        "RateLimit": '"write";r=2;t=1',
    }
    refused = decisions[3]
    assert refused.remaining == 0 and refused.retry_after_s == 1
    assert refused.headers()["Retry-After"] == "1"
    assert limiter.take("other", "write").allowed  # per key
    clock.now += 0.5  # one token back
    assert limiter.take("k", "write").allowed
    assert not limiter.take("k", "write").allowed
    clock.now += 100  # never more than the burst
    assert [limiter.take("k", "write").allowed for _ in range(4)] == [True, True, True, False]


def test_rate_policy_is_validated() -> None:
    with pytest.raises(ValueError):
        RatePolicy("read", per_s=0, burst=1)
    with pytest.raises(ValueError):
        RatePolicy("read", per_s=1, burst=0)


def test_stream_slots_cap_per_key_and_release_once() -> None:
    slots = StreamSlots(limit=2)
    first, second = slots.acquire("k"), slots.acquire("k")
    assert first is not None and second is not None
    assert slots.acquire("k") is None
    assert slots.acquire("other") is not None
    first()
    first()  # a second release of the same stream frees nothing more
    assert slots.open("k") == 1
    assert slots.acquire("k") is not None and slots.acquire("k") is None


def test_time_window() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    window = TimeWindow(earliest=datetime(1950, 1, 1, tzinfo=UTC), latest=now + timedelta(days=30))
    body = MissionCreate.model_validate(mission_body())
    assert window.problems(body) == []
    late = mission_body()
    late["last_known_position"]["time"] = "2026-03-01T00:00:00Z"
    late["end_position"] = {"lat": 60, "lon": 4, "time": "9999-12-31T20:00:00Z"}
    problems = window.problems(MissionCreate.model_validate(late))
    assert [p[0] for p in problems] == ["last_known_position.time", "end_position.time"]
    assert all(p[2] == "time_out_of_range" for p in problems)


def test_cursor_round_trip_and_forgeries() -> None:
    moment = datetime(2026, 1, 1, 12, tzinfo=UTC)
    mission_id = uuid.uuid4()
    assert decode_cursor(encode_cursor(moment, mission_id)) == (moment, mission_id)
    for raw in ("2026-01-01T12:00:00|" + str(mission_id), "x|y", "nope"):
        with pytest.raises(ValueError):
            decode_cursor(base64.urlsafe_b64encode(raw.encode()).decode())
