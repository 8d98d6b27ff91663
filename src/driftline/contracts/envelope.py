"""CloudEvents 1.0 in Kafka binary mode: the data is the value, the attributes are `ce_` headers."""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Generic, TypeVar

from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from pydantic import ValidationError

from driftline.contracts.events import EVENTS_BY_TYPE, EventData
from driftline.errors import UnparseableRecordError

D = TypeVar("D", bound=EventData, covariant=True)  # an Envelope[Sub] is an Envelope[Base]
T = TypeVar("T", bound=EventData)

Headers = Sequence[tuple[str, bytes]]


def rfc3339(moment: datetime) -> str:
    """`moment` as RFC 3339 UTC with a `Z`, the form every Driftline timestamp takes."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def new_traceparent() -> str:
    """A fresh W3C trace context (version 00, sampled)."""
    return f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-01"


def active_traceparent() -> str | None:
    """The `traceparent` of the current OpenTelemetry span, or None outside any span."""
    if not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get("traceparent")


#: W3C Trace Context: version-traceid-parentid-flags in lowercase hex; a later version
#: may append fields after a dash, which are ignored (and never stored).
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?", re.S)


def parse_traceparent(value: str | None) -> tuple[str, str] | None:
    """(trace id, flags) of a valid `traceparent`, else None (strict W3C Trace Context:
    no over-long, upper-case or non-hex field, no all-zero id, no version ff)."""
    match = _TRACEPARENT.fullmatch(value or "")
    if match is None:
        return None
    version, trace_id, parent_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    if trace_id == "0" * 32 or parent_id == "0" * 16:
        return None
    return trace_id, flags


def child_traceparent(parent: str | None) -> str:
    """The same trace with a new span id, so every stage hop stays in one trace; an
    invalid `parent` starts a new trace (it is never copied)."""
    parsed = parse_traceparent(parent)
    if parsed is None:
        return new_traceparent()
    trace_id, flags = parsed
    return f"00-{trace_id}-{os.urandom(8).hex()}-{flags}"


@dataclass(frozen=True)
class Envelope(Generic[D]):
    """An event with its CloudEvents attributes."""

    data: D
    source: str
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    traceparent: str = field(default_factory=new_traceparent)

    @property
    def type(self) -> str:
        return self.data.ce_type

    @property
    def subject(self) -> str:
        return str(self.data.mission_id)

    @property
    def key(self) -> bytes:
        """The Kafka key: the mission id, so one mission's events stay in order (a
        simulation shard's record has its own, to spread shards over workers)."""
        return self.data.partition_key().encode()

    def value(self) -> bytes:
        return self.data.model_dump_json().encode()

    def headers(self) -> list[tuple[str, bytes]]:
        time = rfc3339(self.time)
        return [
            ("ce_specversion", b"1.0"),
            ("ce_id", str(self.id).encode()),
            ("ce_source", self.source.encode()),
            ("ce_type", self.type.encode()),
            ("ce_time", time.encode()),
            ("ce_subject", self.subject.encode()),
            ("content-type", b"application/json"),
            ("traceparent", self.traceparent.encode()),
        ]


def stage_source(stage: str) -> str:
    return f"/driftline/{stage}"


def follow(data: T, *, cause: Envelope[EventData], stage: str) -> Envelope[T]:
    """An event emitted because of `cause`: same trace, source of the emitting stage.

    The id is derived from the cause's id and the new type so a stage that runs twice
    for the same input (after a crash before commit) emits the very same event ids.
    """
    key = data.partition_key()
    # One cause may emit several events of a type (the shards of a mission): their keys
    # tell them apart. The mission-keyed name is kept, so other ids stay as they were.
    name = data.ce_type if key == str(data.mission_id) else f"{data.ce_type}/{key}"
    event_id = uuid.uuid5(cause.id, name)
    return Envelope(
        data=data,
        source=stage_source(stage),
        id=event_id,
        # The emitting stage's span when there is one, so the next hop is its child.
        traceparent=active_traceparent() or child_traceparent(cause.traceparent),
    )


def header_map(headers: Headers | None) -> dict[str, str]:
    """Kafka headers as text, last value wins; undecodable values become replacement text."""
    return {k: (v or b"").decode("utf-8", "replace") for k, v in (headers or ())}


def parse_record(headers: Headers | None, value: bytes | None) -> Envelope[EventData]:
    """Read a Kafka record as a known event, or raise UnparseableRecordError saying why."""
    attrs = header_map(headers)
    if attrs.get("ce_specversion") != "1.0":
        raise UnparseableRecordError("missing or unsupported ce_specversion header")
    ce_type = attrs.get("ce_type", "")
    model = EVENTS_BY_TYPE.get(ce_type)
    if model is None:
        raise UnparseableRecordError(f"unknown ce_type {ce_type!r}")
    try:
        event_id = uuid.UUID(attrs["ce_id"])
        time = datetime.fromisoformat(attrs["ce_time"].replace("Z", "+00:00"))
        data = model.model_validate(json.loads(value or b""))
    except (KeyError, ValueError, ValidationError) as exc:
        raise UnparseableRecordError(f"{type(exc).__name__}: {exc}") from exc
    return Envelope(
        data=data,
        source=attrs.get("ce_source", ""),
        id=event_id,
        time=time,
        traceparent=attrs.get("traceparent") or new_traceparent(),
    )
