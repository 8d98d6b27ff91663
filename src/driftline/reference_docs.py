"""The generated parts of docs/api.md and docs/events.md.

Both files are prose written by hand around regions the code writes: between
`<!-- generated:NAME -->` and `<!-- /generated:NAME -->`. The REST regions come from the
OpenAPI document the API serves (`create_app(settings).openapi()`) and its problem types;
the event regions from the AsyncAPI document and event models (`contracts.schemas`),
the dead-letter headers from the code that writes them, and each event's example record
from the envelope code that publishes it. `driftline docs write` (`make docs`) rewrites
the regions; a unit test fails when they are stale, as `make schemas` does for schemas/.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from driftline.contracts.envelope import Envelope, stage_source
from driftline.contracts.events import (
    EVENT_TYPES,
    ArtifactRef,
    Centroid,
    EventData,
    ForcingReadyV1,
    ForcingUsed,
    MissionCompletedV1,
    MissionFailedV1,
    MissionRequestedV1,
    MissionStatusV1,
    MissionSummary,
    MissionValidatedV1,
    PlanCompletedV1,
    PlanRequestedV1,
    ResultsReadyV1,
    SimulationCompletedV1,
)
from driftline.contracts.missions import MissionCreate, MissionStatus
from driftline.contracts.plans import PlanArea, PlanCreate, PlanSummary, UnitType, Waypoint
from driftline.contracts.schemas import CE_HEADERS, asyncapi_document, event_schema
from driftline.contracts.topics import PUBLIC_TOPICS, dlq_topic, topic

DEFAULT_PREFIX = "driftline."
MARKER = re.compile(
    r"(<!-- generated:(?P<name>[a-z-]+) -->\n).*?(<!-- /generated:(?P=name) -->)", re.S
)

# -- Markdown helpers ------------------------------------------------------------------


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _table(header: Iterable[str], rows: Iterable[Iterable[object]]) -> str:
    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _bounds(schema: dict[str, Any]) -> str:
    marks = [
        (">=", "minimum"),
        (">", "exclusiveMinimum"),
        ("<=", "maximum"),
        ("<", "exclusiveMaximum"),
        ("length >=", "minLength"),
        ("length <=", "maxLength"),
    ]
    found = []
    for sign, key in marks:
        if key in schema:
            value = schema[key]
            found.append(f"{sign} {int(value) if float(value).is_integer() else value}")
    return f" ({', '.join(found)})" if found else ""


def type_of(schema: dict[str, Any]) -> str:
    """A JSON Schema as a short type for a person: `string (uri)`, `list of ArtifactRef`."""
    if "$ref" in schema:
        return f"`{_ref_name(schema['$ref'])}`"
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s.get("type") != "null"]
        text = " or ".join(type_of(s) for s in options)
        return f"{text} or null" if len(options) < len(schema["anyOf"]) else text
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    if "enum" in schema:
        values = schema["enum"]
        if len(values) > 10:
            return f"{schema.get('type', 'value')}: one of {len(values)} values"
        return " \\| ".join(f"`{v}`" for v in values)
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list of {type_of(schema.get('items', {}))}"
    if kind == "object" and "additionalProperties" in schema:
        extra = schema["additionalProperties"]
        values = type_of(extra) if isinstance(extra, dict) else "any"
        return f"object of {values}"
    fmt = f" ({schema['format']})" if "format" in schema else ""
    return f"{kind}{fmt}{_bounds(schema)}"


def fields_table(schema: dict[str, Any]) -> str:
    """One row per property: name, type, required or default, description."""
    required = set(schema.get("required", []))
    rows = []
    for name, prop in schema.get("properties", {}).items():
        if name in required:
            need = "required"
        elif "default" in prop:
            need = f"default `{json.dumps(prop['default'])}`"
        else:
            need = "optional"
        rows.append((f"`{name}`", type_of(prop), need, prop.get("description", "")))
    if not rows:
        return "_no fields_"
    return _table(("field", "type", "", "meaning"), rows)


def replace_regions(text: str, regions: dict[str, str]) -> str:
    """`text` with each generated region's body replaced; an unknown region is an error."""

    def body(match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in regions:
            raise KeyError(f"no generator for region {name!r}")
        return f"{match.group(1)}{regions[name].rstrip()}\n{match.group(3)}"

    return MARKER.sub(body, text)


# -- docs/api.md ---------------------------------------------------------------------------


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document the API serves, with default settings (no I/O)."""
    from driftline.api.app import create_app
    from driftline.settings import Settings

    # Defaults, never this machine's environment: the docs must not depend on it.
    return create_app(Settings.model_construct()).openapi()


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
    ]


def _first_sentence(op: dict[str, Any]) -> str:
    text = (op.get("description") or op.get("summary") or "").strip()
    return text.split("\n\n")[0].replace("\n", " ")


def _success(op: dict[str, Any]) -> list[str]:
    return sorted(s for s in op["responses"] if s.startswith("2"))


def _errors(op: dict[str, Any]) -> list[str]:
    return sorted(s for s in op["responses"] if not s.startswith("2"))


def _auth(path: str) -> str:
    return "API key" if path.startswith("/v1/missions") else "none"


def endpoints_region(doc: dict[str, Any]) -> str:
    rows = [
        (
            f"`{method} {path}`",
            _first_sentence(op),
            ", ".join(_success(op)),
            ", ".join(_errors(op)) or "-",
            _auth(path),
        )
        for method, path, op in _operations(doc)
    ]
    return _table(("operation", "what", "success", "errors", "auth"), rows)


def _anchor(method: str, path: str) -> str:
    return re.sub(r"[^a-z0-9 -]", "", f"{method} {path}".lower()).replace(" ", "-")


def _parameters(op: dict[str, Any]) -> str:
    params = op.get("parameters", [])
    if not params:
        return ""
    rows = [
        (
            f"`{p['name']}`",
            p["in"],
            "required" if p.get("required") else "optional",
            type_of(p.get("schema", {})),
            p.get("description", ""),
        )
        for p in params
    ]
    return _table(("parameter", "in", "", "type", "meaning"), rows) + "\n"


def _response_rows(op: dict[str, Any]) -> str:
    rows = []
    for status, response in sorted(op["responses"].items()):
        content = response.get("content", {})
        media = ", ".join(f"`{m}`" for m in content) or "-"
        schemas = [
            type_of(c["schema"]) for c in content.values() if c.get("schema", {}).get("$ref")
        ]
        headers = ", ".join(f"`{h}`" for h in response.get("headers", {}))
        rows.append((status, response.get("description", ""), media, " ".join(schemas), headers))
    return _table(("status", "when", "media type", "body", "headers"), rows)


def operations_region(doc: dict[str, Any]) -> str:
    parts = []
    for method, path, op in _operations(doc):
        lines = [f"### `{method} {path}`", ""]
        description = (op.get("description") or op.get("summary") or "").strip()
        lines += [description, ""] if description else []
        lines += [f"Auth: {_auth(path)}.", ""]
        params = _parameters(op)
        if params:
            lines += [params]
        body = op.get("requestBody")
        if body:
            for media, content in body.get("content", {}).items():
                lines += [f"Request body: `{media}`, {type_of(content.get('schema', {}))}.", ""]
        lines += [_response_rows(op), ""]
        parts.append("\n".join(lines))
    return "\n".join(parts)


def problem_types_region() -> str:
    from driftline.api.problems import PROBLEM_KINDS

    rows = [("`about:blank`", "401, 404, 405, 413, 415", "the HTTP status phrase")]
    rows += [(f"`{k.type}`", str(k.status), k.title) for k in PROBLEM_KINDS]
    return _table(("type", "status", "title"), rows)


def schemas_region(doc: dict[str, Any]) -> str:
    parts = []
    for name, schema in sorted(doc["components"]["schemas"].items()):
        summary = " ".join((schema.get("description") or "").split())
        lines = [f"### `{name}`", ""]
        lines += [summary, ""] if summary else []
        if "enum" in schema:
            lines.append("One of: " + ", ".join(f"`{v}`" for v in schema["enum"]) + ".")
        else:
            lines.append(fields_table(schema))
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


def api_regions() -> dict[str, str]:
    doc = openapi_document()
    return {
        "endpoints": endpoints_region(doc),
        "operations": operations_region(doc),
        "problem-types": problem_types_region(),
        "schemas": schemas_region(doc),
    }


# -- docs/events.md ------------------------------------------------------------------------

MISSION_ID = uuid.UUID("0b7f8a52-3c41-4d7e-9a55-6f1d2e3c4b5a")
REQUESTED_AT = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
EXAMPLE_REQUEST = {
    "name": "Fishing vessel overdue - life raft reported",
    "object_type": "LIFE-RAFT-DB-10",
    "last_known_position": {
        "lat": 60.12,
        "lon": 4.3,
        "time": "2024-01-01T06:00:00Z",
        "radius_m": 1000,
    },
    "duration_hours": 24,
    "particles": 2000,
    "external_ref": "JRCC-2024-0042",
}
PRODUCT_FILES = [
    ("raw/particles.nc", "application/x-netcdf", 2_412_880),
    ("products/density.nc", "application/x-netcdf", 183_204),
    ("products/containment.geojson", "application/geo+json", 9_311),
    ("products/containment.kml", "application/vnd.google-earth.kml+xml", 11_027),
    ("products/datum_track.geojson", "application/geo+json", 4_518),
    ("products/stranded.geojson", "application/geo+json", 98),
    ("products/map.png", "image/png", 141_977),
    ("products/summary.json", "application/json", 1_406),
]


def _artifacts() -> list[ArtifactRef]:
    base = f"http://127.0.0.1:8000/v1/missions/{MISSION_ID}/artifacts"
    return [
        ArtifactRef(
            name=name,
            media_type=media,
            href=f"{base}/{name}",
            bytes=size,
            sha256=uuid.uuid5(MISSION_ID, name).hex * 2,
        )
        for name, media, size in PRODUCT_FILES
    ]


def _forcing() -> list[ForcingUsed]:
    return [
        ForcingUsed(variable=v, source=f"sample-{v}", key=f"forcing/{k}.nc")
        for v, k in (("current", "3f9c0a7e51d2"), ("wind", "a84b6d20c913"))
    ]


def _summary() -> MissionSummary:
    return MissionSummary(
        particles_total=2000,
        particles_active=1964,
        particles_stranded=36,
        fraction_afloat=0.982,
        centroid=Centroid(lat=60.2071, lon=4.1382, time=REQUESTED_AT + timedelta(hours=18)),
        area_km2={"50": 61.4, "90": 214.9, "95": 283.2},
        forcing=_forcing(),
    )


def example_events() -> list[tuple[EventData, str, int]]:
    """One realistic `data` of every event type, with the stage that emits it and the
    minutes after the request at which it does."""
    request = MissionCreate.model_validate(EXAMPLE_REQUEST)
    ids: dict[str, Any] = {"mission_id": MISSION_ID, "tenant": "jrcc"}
    at = REQUESTED_AT
    examples: list[tuple[EventData, str, int]] = [
        (MissionRequestedV1(**ids, requested_at=at, request=request), "api", 0),
        (
            MissionValidatedV1(
                **ids, request=request, object_type_id=7, object_type_key="LIFE-RAFT-DB-10", seed=7
            ),
            "validate",
            0,
        ),
        (
            ForcingReadyV1(**ids, request=request, object_type_id=7, seed=7, forcing=_forcing()),
            "fetch_forcing",
            0,
        ),
        (
            SimulationCompletedV1(
                **ids,
                request=request,
                particles_key=f"jrcc/{MISSION_ID}/raw/particles.nc",
                particles_total=2000,
                particles_active=1964,
                particles_stranded=36,
                forcing=_forcing(),
            ),
            "simulate",
            1,
        ),
        (
            ResultsReadyV1(**ids, request=request, artifacts=_artifacts(), summary=_summary()),
            "postprocess",
            1,
        ),
        (
            MissionCompletedV1(
                **ids,
                name=request.name,
                external_ref=request.external_ref,
                completed_at=at + timedelta(minutes=1),
                artifacts=_artifacts(),
                summary=_summary(),
            ),
            "notify",
            1,
        ),
        (
            MissionFailedV1(
                **ids,
                stage="validate",
                reason="position_on_land",
                detail="The last known position 60.39N 5.32E is on land.",
                failed_at=at,
            ),
            "validate",
            0,
        ),
        (
            MissionStatusV1(
                **ids,
                status=MissionStatus.SIMULATED,
                stage="simulate",
                progress=0.7,
                at=at + timedelta(minutes=1),
            ),
            "simulate",
            1,
        ),
        *_plan_examples(ids),
    ]
    assert {type(e) for e, _, _ in examples} == set(EVENT_TYPES), "an event type has no example"
    return examples


PLAN_ID = uuid.UUID("6f1d2e3c-4b5a-4d7e-9a55-0b7f8a523c41")


def _plan_examples(ids: dict[str, Any]) -> list[tuple[EventData, str, int]]:
    """A search plan asked for on the completed mission, and the plan made."""
    commence = REQUESTED_AT + timedelta(hours=6)
    request = PlanCreate.model_validate(
        {
            "commence_time": commence,
            "units": [{"name": "RESCUE 1", "type": "vessel", "speed_kn": 12, "time_on_scene_h": 3}],
        }
    )
    area = PlanArea(
        unit="RESCUE 1",
        unit_type=UnitType.VESSEL,
        pattern="parallel_sweep",
        corners=[[4.05, 60.15], [4.25, 60.17], [4.24, 60.23], [4.04, 60.21]],
        heading_deg=72.0,
        sweep_width_km=7.78,
        sweep_width_source="IAMSAR Manual Vol. II, Appendix N",
        track_spacing_km=1.52,
        legs=5,
        track_length_km=66.3,
        area_km2=77.1,
        effort_km2=518.6,
        coverage=6.73,
        pod=0.9988,
        poc=0.6412,
        pos=0.6404,
        first_waypoint=Waypoint(lat=60.1531, lon=4.0561, time=commence),
    )
    summary = PlanSummary(
        commence_time=commence,
        pos=0.6404,
        optimal_pos=0.6932,
        cumulative_pos_before=0.0,
        cumulative_pos_after=0.6404,
        searches_applied=0,
        areas=[area],
        containment_km2={"50": 48.2, "90": 171.5},
    )
    base = f"http://127.0.0.1:8000/v1/missions/{MISSION_ID}/plans/{PLAN_ID}/artifacts"
    artifacts = [
        ArtifactRef(
            name=name,
            media_type=media,
            href=f"{base}/{name}",
            bytes=size,
            sha256=uuid.uuid5(PLAN_ID, name).hex * 2,
        )
        for name, media, size in (
            ("plan.geojson", "application/geo+json", 18211),
            ("plan.gpx", "application/gpx+xml", 1630),
            ("briefing.txt", "text/plain; charset=utf-8", 912),
        )
    ]
    return [
        (
            PlanRequestedV1(
                **ids,
                plan_id=PLAN_ID,
                request=request,
                object_type="LIFE-RAFT-DB-10",
                title="Fishing vessel overdue",
                particles_key=f"jrcc/{MISSION_ID}/raw/particles.nc",
            ),
            "api",
            30,
        ),
        (
            PlanCompletedV1(
                **ids,
                plan_id=PLAN_ID,
                completed_at=REQUESTED_AT + timedelta(minutes=31),
                summary=summary,
                artifacts=artifacts,
            ),
            "plan",
            31,
        ),
    ]


def example_record(data: EventData, stage: str, minutes: int) -> str:
    """The Kafka record the pipeline publishes for `data`: key, headers and value."""
    envelope = Envelope(
        data=data,
        source=stage_source(stage),
        id=uuid.uuid5(MISSION_ID, data.ce_type),
        time=REQUESTED_AT + timedelta(minutes=minutes),
        traceparent=TRACE,
    )
    headers = "\n".join(f"{k}: {v.decode()}" for k, v in envelope.headers())
    value = json.dumps(json.loads(envelope.value()), indent=2)
    return (
        f"topic: {topic(DEFAULT_PREFIX, data.topic)}\nkey: {envelope.key.decode()}\n"
        f"{headers}\n\n{value}"
    )


def _consumers() -> dict[str, str]:
    from workers import STAGE_REGISTRY

    return {stage.consumes.topic: name for name, stage in STAGE_REGISTRY.items()}


def topics_region() -> str:
    consumers = _consumers()
    doc = asyncapi_document()
    rows = []
    for channel in doc["channels"].values():
        suffix = channel["address"].removeprefix(DEFAULT_PREFIX)
        types = [
            doc["components"]["messages"][_ref_name(m["$ref"])]["name"]
            for m in channel["messages"].values()
        ]
        stage = consumers.get(suffix)
        rows.append(
            (
                f"`{channel['address']}`",
                "public" if suffix in PUBLIC_TOPICS else "internal",
                ", ".join(f"`{t}`" for t in types),
                f"`{DEFAULT_PREFIX}{stage}`" if stage else "your own groups",
                f"`{dlq_topic(channel['address'])}`" if stage else "-",
            )
        )
    return _table(("topic", "kind", "event type", "consumer group", "dead letters"), rows)


CE_MEANING = {
    "ce_specversion": "CloudEvents version.",
    "ce_id": "Event id; a retried, redelivered or replayed event keeps it: de-duplicate on it.",
    "ce_source": "`/driftline/<stage>` that emitted it (`/driftline/api` for requests).",
    "ce_type": "Event type with its version, e.g. `driftline.mission.completed.v1`.",
    "ce_time": "When the event was made, RFC 3339 UTC.",
    "ce_subject": "The mission id (also the record key).",
    "content-type": "Media type of the value.",
    "traceparent": "W3C trace context, from the HTTP request through every stage.",
}


def headers_region() -> str:
    described: dict[str, Any] = CE_HEADERS
    required = set(described["required"])
    rows = [
        (
            f"`{name}`",
            type_of(schema),
            "always" if name in required else "always (not a CloudEvents attribute)",
            CE_MEANING.get(name, ""),
        )
        for name, schema in described["properties"].items()
    ]
    return _table(("header", "value", "present", "meaning"), rows)


def dlq_headers_region() -> str:
    from aiokafka import ConsumerRecord

    from driftline.runtime.dead_letters import Failure, dead_letter_headers

    data, stage, minutes = example_events()[3]  # simulations.completed, read by postprocess
    envelope = Envelope(
        data=data,
        source=stage_source(stage),
        id=uuid.uuid5(MISSION_ID, data.ce_type),
        time=REQUESTED_AT + timedelta(minutes=minutes),
        traceparent=TRACE,
    )
    record = ConsumerRecord(
        topic=topic(DEFAULT_PREFIX, data.topic),
        partition=1,
        offset=4711,
        timestamp=0,
        timestamp_type=0,
        key=envelope.key,
        value=envelope.value(),
        checksum=None,
        serialized_key_size=len(envelope.key),
        serialized_value_size=len(envelope.value()),
        headers=envelope.headers(),
    )
    failed = REQUESTED_AT + timedelta(minutes=2)
    failure = Failure(
        error=TimeoutError("object store did not answer within 30 s"),
        attempts=4,
        first_failure=failed,
        last_failure=failed + timedelta(seconds=9),
    )
    headers = dead_letter_headers(
        record, group=f"{DEFAULT_PREFIX}postprocess", stage="postprocess", failure=failure
    )
    lines = [f"{k}: {v.decode()}" for k, v in headers if k.startswith("dlq_")]
    return (
        f"A dead letter on `{dlq_topic(record.topic)}` keeps the original key, value and "
        "`ce_` headers and adds:\n\n```text\n" + "\n".join(lines) + "\n```"
    )


def event_types_region() -> str:
    parts = []
    for data, stage, minutes in example_events():
        model = type(data)
        schema = event_schema(model)
        kind = "public" if model.topic in PUBLIC_TOPICS else "internal"
        summary = " ".join((model.__doc__ or "").split()) if model.__doc__ else ""
        lines = [
            f"### `{model.ce_type}`",
            "",
            f"Topic `{topic(DEFAULT_PREFIX, model.topic)}` ({kind}), emitted by "
            f"`{stage_source(stage)}`. JSON Schema: `schemas/{model.ce_type}.json`.",
            "",
        ]
        if summary and not summary.startswith("Base of"):
            lines += [summary, ""]
        lines += [fields_table(schema), "", "Example record:", "", "```text"]
        lines += [example_record(data, stage, minutes), "```", ""]
        parts.append("\n".join(lines))
    return "\n".join(parts)


def shared_types_region() -> str:
    parts = []
    for model in (ArtifactRef, MissionSummary, Centroid, ForcingUsed):
        schema = model.model_json_schema(mode="serialization")
        summary = " ".join((model.__doc__ or "").split())
        parts.append(f"### `{model.__name__}`\n\n{summary}\n\n{fields_table(schema)}\n")
    parts.append(
        "`MissionCreate` (the `request` of internal events) is the mission body of the REST "
        "API: see [api.md](api.md#missioncreate).\n"
    )
    return "\n".join(parts)


def events_regions() -> dict[str, str]:
    return {
        "topics": topics_region(),
        "ce-headers": headers_region(),
        "dlq-headers": dlq_headers_region(),
        "event-types": event_types_region(),
        "shared-types": shared_types_region(),
    }


# -- files ---------------------------------------------------------------------------------

GENERATORS: dict[str, Callable[[], dict[str, str]]] = {
    "api.md": api_regions,
    "events.md": events_regions,
}


def rendered_reference_docs(docs_dir: Path) -> dict[Path, str]:
    """Each generated file's path and content as it should be on disk."""
    return {
        docs_dir / name: replace_regions((docs_dir / name).read_text(), regions())
        for name, regions in GENERATORS.items()
    }


def write_reference_docs(docs_dir: Path) -> list[Path]:
    written = []
    for path, content in rendered_reference_docs(docs_dir).items():
        path.write_text(content)
        written.append(path)
    return written
