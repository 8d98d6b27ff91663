"""The OpenAPI document: FastAPI's, plus the component schemas routes refer to by hand
(problem details, the payload of a status event) and the shape of each SSE event."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from driftline.api.problems import problem_schemas
from driftline.contracts.missions import StatusChange

REF = "#/components/schemas/{model}"


def component_schemas(*models: type[BaseModel]) -> dict[str, Any]:
    """Each model's schema, and the ones it refers to, as OpenAPI components."""
    components: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template=REF)
        components.update(schema.pop("$defs", {}))
        components[model.__name__] = schema
    return components


def event_stream(event: str, payload: type[BaseModel], description: str) -> dict[str, Any]:
    """A `text/event-stream` response whose events carry `payload` as JSON in `data`
    (each event is validated against `itemSchema`, as FastAPI documents SSE)."""
    return {
        "description": description,
        "content": {
            "text/event-stream": {
                "itemSchema": {
                    "type": "object",
                    "required": ["data"],
                    "properties": {
                        "id": {"type": "string", "pattern": "^[0-9]+$"},
                        "event": {"type": "string", "enum": [event]},
                        "data": {
                            "type": "string",
                            "contentMediaType": "application/json",
                            "contentSchema": {"$ref": REF.format(model=payload.__name__)},
                        },
                    },
                }
            }
        },
    }


def complete_openapi(app: FastAPI) -> None:
    """Add the hand-referenced component schemas to `app`'s document (built on first use)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(problem_schemas())
            components.update(component_schemas(StatusChange))
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
