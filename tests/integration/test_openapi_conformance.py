"""The OpenAPI document matches the API: schemathesis generates requests from
`/openapi.json` (valid and invalid ones, boundary values, a fixed seed) and checks every
answer of the live ASGI app, on the test's own PostgreSQL, for server errors and for
status codes, media types and bodies the document does not declare.

Callback URLs are judged by the real address filter with a resolver that only reads IP
literals, so no generated host name is ever looked up or contacted. The bound is
`DRIFTLINE_FUZZ_EXAMPLES` examples per operation (default 25); the long campaign in
docs/security.md is this test with a larger bound.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import socket
import uuid
import zlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, seed
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from driftline.api.app import create_app
from driftline.contracts.events import Centroid, MissionSummary
from driftline.contracts.missions import MissionStatus
from driftline.contracts.results import MissionResult, StoredArtifact
from driftline.settings import Settings
from driftline.storage.factory import open_artifact_store
from driftline.webhooks import check_callback_url
from tests.helpers import mission_body
from tests.integration.api_harness import running_api

EXAMPLES = int(os.environ.get("DRIFTLINE_FUZZ_EXAMPLES", "25"))
SEED = 20261126
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
ARTIFACT = "products/summary.json"


def literal_only_resolve(host: str, port: int, **_: object) -> list[tuple[Any, ...]]:
    """Resolves IP literals only; any name fails as unknown, without a DNS query."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError as exc:
        raise socket.gaierror(socket.EAI_NONAME, f"{host!r} is not resolved in tests") from exc
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (str(address), port))]


async def offline_callback_check(url: str) -> None:
    await asyncio.to_thread(
        check_callback_url, url, allow_private=False, allowlist=[], resolve=literal_only_resolve
    )


@dataclass
class FuzzTarget:
    """The app under test, a valid key, and real missions some cases are pointed at."""

    app: FastAPI
    headers: dict[str, str]
    missions: list[str]  # accepted, cancelled, completed (with an artifact)
    answers: Counter[tuple[str, str, int]] = field(default_factory=Counter)

    def aim(self, case: schemathesis.Case) -> None:
        """Point three in four cases with a well-formed mission id at a real mission, so
        answers other than 404 are checked too; deterministic in the generated id."""
        params = case.path_parameters
        if not params or "mission_id" not in params:
            return
        try:
            generated = uuid.UUID(str(params["mission_id"]))
        except ValueError:
            return  # an invalid id stays: its 422 is checked
        pick = zlib.crc32(generated.bytes) % (len(self.missions) + 1)
        if pick < len(self.missions):
            params["mission_id"] = self.missions[pick]
            if "name" in params and pick == 2 and generated.int % 2:
                params["name"] = ARTIFACT

    def record(self, case: schemathesis.Case, mode: GenerationMode, status: int) -> None:
        self.answers[(case.operation.label, mode.value, status)] += 1

    def report(self) -> dict[str, Any]:
        per_operation: dict[str, dict[str, int]] = {}
        for (label, mode, status), count in sorted(self.answers.items()):
            per_operation.setdefault(label, {})[f"{mode} {status}"] = count
        return {
            "examples_per_operation_bound": EXAMPLES,
            "seed": SEED,
            "cases": sum(self.answers.values()),
            "operations": per_operation,
        }


async def completed_mission(settings: Settings, database: Any, mission_id: str) -> None:
    """Make `mission_id` completed with one stored artifact, as post-processing would."""
    key = f"alpha/{mission_id}/{ARTIFACT}"
    data = b'{"particles_total": 10}'
    async with open_artifact_store(settings) as storage:
        stored = await storage.put_bytes(key, data, "application/json")
    result = MissionResult(
        summary=MissionSummary(
            particles_total=10,
            particles_active=10,
            particles_stranded=0,
            fraction_afloat=1.0,
            centroid=Centroid(lat=60.0, lon=4.0),
            area_km2={"50": 1.0, "90": 2.0, "95": 3.0},
        ),
        artifacts=[
            StoredArtifact(
                name=ARTIFACT,
                media_type="application/json",
                href=f"http://test/v1/missions/{mission_id}/artifacts/{ARTIFACT}",
                bytes=len(data),
                sha256=stored.sha256,
                key=key,
            )
        ],
    )
    async with database.unit_of_work() as uow:
        mission = await uow.missions.get(uuid.UUID(mission_id), lock=True)
        assert mission is not None
        mission.result = result.model_dump(mode="json")
        await uow.change_status(mission, MissionStatus.COMPLETED, stage="notify", cause=None)


@pytest.fixture
async def fuzz_target(settings: Settings) -> AsyncIterator[FuzzTarget]:
    roomy: dict[str, Any] = {
        "rate_limit_read_per_s": 1e6,
        "rate_limit_read_burst": 1_000_000,
        "rate_limit_write_per_s": 1e6,
        "rate_limit_write_burst": 1_000_000,
        "sse_idle_timeout_s": 0.3,
        "sse_keepalive_s": 0.1,
        "sse_max_streams_per_key": 1000,
    }
    async with running_api(settings, **roomy) as api:
        missions = [(await api.post(mission_body())).json()["id"] for _ in range(3)]
        await api.client.delete(f"/v1/missions/{missions[1]}", headers=api.auth())
        await completed_mission(api.services.settings, api.database, missions[2])
        app = create_app(api.services.settings, check_callback=offline_callback_check)
        target = FuzzTarget(app=app, headers=api.auth(), missions=missions)
        try:
            yield target
        finally:
            # schemathesis ran the app's lifespan on its own event loop: end it there.
            shutdown_lifespans()
            report = json.dumps(target.report(), indent=1)
            print(f"\nschemathesis campaign:\n{report}")
            if path := os.environ.get("DRIFTLINE_FUZZ_REPORT"):
                Path(path).write_text(report, encoding="utf-8")  # noqa: ASYNC240


def check_operation(target: FuzzTarget, operation: Any, mode: GenerationMode) -> None:
    """Up to EXAMPLES generated cases of one operation; the first non-conforming answer
    fails the test (shrunk by Hypothesis to a minimal request)."""
    strategy = operation.as_strategy(generation_mode=mode)

    @hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @seed(SEED)
    @given(case=strategy)
    def conforms(case: schemathesis.Case) -> None:
        target.aim(case)
        response = case.call(headers=target.headers)
        target.record(case, mode, response.status_code)
        case.validate_response(response, checks=CHECKS)

    try:
        conforms()
    except Unsatisfiable:
        # Nothing to make invalid (an operation without parameters or body).
        if mode is GenerationMode.POSITIVE:
            raise


async def test_api_answers_as_its_openapi_says(fuzz_target: FuzzTarget) -> None:
    schema = schemathesis.openapi.from_asgi(
        "/openapi.json", fuzz_target.app, config=schemathesis.Config(seed=SEED)
    )
    operations = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # a document schemathesis cannot read is a failure too
        operations.append(result.ok())
    assert len(operations) == 17, [op.label for op in operations]
    for operation in operations:
        for mode in GenerationMode:
            check_operation(fuzz_target, operation, mode)
