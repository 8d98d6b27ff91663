"""Published schemas: JSON Schema per event type and an AsyncAPI 3.0 document of the topics.

Generated from the pydantic models (`make schemas`); a unit test fails when the files in
`schemas/` are stale, so downstream consumers can trust them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from driftline import __version__
from driftline.contracts.events import EVENT_TYPES, EventData
from driftline.contracts.topics import PUBLIC_TOPICS

CE_HEADERS = {
    "type": "object",
    "description": "CloudEvents 1.0 attributes in Kafka binary mode.",
    "properties": {
        "ce_specversion": {"type": "string", "const": "1.0"},
        "ce_id": {"type": "string", "format": "uuid"},
        "ce_source": {"type": "string"},
        "ce_type": {"type": "string"},
        "ce_time": {"type": "string", "format": "date-time"},
        "ce_subject": {"type": "string", "description": "mission id"},
        "content-type": {"type": "string", "const": "application/json"},
        "traceparent": {"type": "string"},
    },
    "required": ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_subject"],
}


def event_schema(model: type[EventData]) -> dict[str, Any]:
    schema = model.model_json_schema(mode="serialization")
    schema["$id"] = f"https://driftline.dev/schemas/{model.ce_type}.json"
    schema["title"] = model.ce_type
    return schema


def asyncapi_document() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for model in EVENT_TYPES:
        name = model.__name__
        messages[name] = {
            "name": model.ce_type,
            "title": model.ce_type,
            "summary": (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else "",
            "contentType": "application/json",
            "headers": CE_HEADERS,
            "payload": {"$ref": f"./{model.ce_type}.json"},
            "bindings": {"kafka": {"key": {"type": "string", "description": "mission id"}}},
        }
        channel = model.topic.replace(".", "_")
        channels.setdefault(
            channel,
            {
                "address": f"driftline.{model.topic}",
                "description": "public" if model.topic in PUBLIC_TOPICS else "internal",
                "messages": {},
            },
        )
        channels[channel]["messages"][name] = {"$ref": f"#/components/messages/{name}"}
        operations[f"receive_{channel}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{channel}"},
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Driftline events",
            "version": __version__,
            "description": "Topic prefix `driftline.` is the default and configurable. Every "
            "record's key is the mission id.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def rendered_schemas() -> dict[str, str]:
    """File name → content, exactly as written to disk."""
    files = {
        f"{model.ce_type}.json": json.dumps(event_schema(model), indent=2, sort_keys=True) + "\n"
        for model in EVENT_TYPES
    }
    files["asyncapi.json"] = json.dumps(asyncapi_document(), indent=2, sort_keys=True) + "\n"
    return files


def write_schemas(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in rendered_schemas().items():
        path = out_dir / name
        path.write_text(content)
        written.append(path)
    return written
