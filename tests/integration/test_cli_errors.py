"""Every expected failure of the CLI is one or two sentences on stderr and a non-zero
exit, never a traceback (unless --debug): the API unreachable or refusing (401, 404, 409,
413, 422, 429, 503), a missing or invalid file, the services not running, a port taken."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from driftline.settings import PROJECT_ROOT, Settings
from tests.cli_harness import CliRun, driftline, new_api_key, serving_api
from tests.helpers import mission_body
from tests.pipeline import free_port

EXAMPLE = str(PROJECT_ROOT / "examples" / "mission.json")


def explained(run: CliRun, *fragments: str) -> str:
    """`run` failed with a sentence on stderr holding `fragments`, and no traceback."""
    assert run.code != 0, run.text
    assert "Traceback" not in run.text, run.text
    assert run.err.startswith("error: "), run.text
    for fragment in fragments:
        assert fragment in run.err, run.text
    return run.err


@pytest.fixture
def listener() -> Iterator[int]:
    """A port held by this test process (as another program would hold it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def closed_port() -> int:
    return free_port()


async def test_api_unreachable(settings: Settings) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    run = await driftline(settings, "submit", EXAMPLE, "--api-url", url, "--api-key", "k")
    explained(run, f"The API at {url} does not answer", "driftline up")


async def test_no_api_key(settings: Settings) -> None:
    run = await driftline(settings, "submit", EXAMPLE, env={"DRIFTLINE_API_KEY": ""})
    explained(run, "An API key is needed", "driftline keys create")


async def test_unknown_key_401(settings: Settings) -> None:
    async with serving_api(settings) as served:
        run = await driftline(served, "submit", EXAMPLE, "--api-key", "not-a-key")
    explained(run, "refused the API key (401", "DRIFTLINE_API_KEY")


async def test_unknown_mission_404(settings: Settings) -> None:
    key = await new_api_key(settings)
    missing = str(uuid.uuid4())
    async with serving_api(settings) as served:
        run = await driftline(served, "missions", "cancel", missing, "--api-key", key)
    explained(run, f"No mission {missing}", "404")


async def test_results_before_completion_409(settings: Settings) -> None:
    key = await new_api_key(settings)
    async with serving_api(settings) as served:
        submitted = await driftline(served, "submit", EXAMPLE, "--json", "--api-key", key)
        assert submitted.code == 0, submitted.text
        mission_id = json.loads(submitted.out)["id"]
        run = await driftline(served, "missions", "download", mission_id, "--api-key", key)
    explained(run, "(409", "results exist once completed")


async def test_body_too_large_413(settings: Settings, tmp_path: Path) -> None:
    key = await new_api_key(settings)
    big = tmp_path / "big.json"
    big.write_text(json.dumps(mission_body(name="raft " * 1000)))  # refused before parsing
    async with serving_api(settings, api_max_body_bytes=1024) as served:
        run = await driftline(served, "submit", str(big), "--api-key", key)
    explained(run, "too large for the API (413", "DRIFTLINE_API_MAX_BODY_BYTES")


async def test_invalid_fields_422(settings: Settings, tmp_path: Path) -> None:
    key = await new_api_key(settings)
    body = mission_body(particles=1)
    body["last_known_position"]["lat"] = 95
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(body))
    async with serving_api(settings) as served:
        run = await driftline(served, "submit", str(bad), "--api-key", key)
    err = explained(run, "The API refused the request (422)")
    assert "  last_known_position.lat: " in err and "  particles: " in err, err


async def test_rate_limited_429(settings: Settings) -> None:
    key = await new_api_key(settings)
    limits = {"rate_limit_write_burst": 1, "rate_limit_write_per_s": 0.01}
    async with serving_api(settings, **limits) as served:
        first = await driftline(served, "submit", EXAMPLE, "--api-key", key)
        assert first.code == 0, first.text
        run = await driftline(served, "submit", EXAMPLE, "--api-key", key)
    explained(run, "Too many requests (429)", "Try again in")


async def test_database_down_503(settings: Settings) -> None:
    down = f"postgresql+asyncpg://driftline:driftline@127.0.0.1:{closed_port()}/driftline"
    async with serving_api(settings, database_url=down) as served:
        run = await driftline(served, "submit", EXAMPLE, "--api-key", "any-key")
    explained(run, "The API is unavailable (503", "Try again in")


async def test_missing_mission_file(settings: Settings, tmp_path: Path) -> None:
    run = await driftline(settings, "submit", str(tmp_path / "nope.json"), "--api-key", "k")
    explained(run, "No mission file", "nope.json")


async def test_invalid_mission_file(settings: Settings, tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"name": "raft",\n "particles": }')
    run = await driftline(settings, "submit", str(broken), "--api-key", "k")
    explained(run, "is not valid JSON (line 2, column", "docs/api.md")


async def test_database_not_running(settings: Settings) -> None:
    port = closed_port()
    down = f"postgresql+asyncpg://driftline:driftline@127.0.0.1:{port}/driftline"
    run = await driftline(
        settings, "keys", "create", "--tenant", "t", env={"DRIFTLINE_DATABASE_URL": down}
    )
    explained(run, f"PostgreSQL does not answer at 127.0.0.1:{port}", "driftline infra up")


async def test_kafka_not_running(settings: Settings) -> None:
    port = closed_port()
    env = {
        "DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}",
        "DRIFTLINE_KAFKA_REQUEST_TIMEOUT_S": "2",
    }
    run = await driftline(settings, "dlq", "list", env=env)
    explained(run, f"Kafka does not answer at 127.0.0.1:{port}", "driftline infra up")


async def test_up_refuses_when_services_are_down(settings: Settings) -> None:
    down = f"postgresql+asyncpg://driftline:driftline@127.0.0.1:{closed_port()}/driftline"
    env = {"DRIFTLINE_DATABASE_URL": down, "DRIFTLINE_API_PORT": str(closed_port())}
    run = await driftline(settings, "up", env=env)
    explained(run, "PostgreSQL does not answer", "driftline infra up")


async def test_api_port_taken(settings: Settings, listener: int) -> None:
    for args in (("api", "--port", str(listener)), ("up",)):
        run = await driftline(settings, *args, env={"DRIFTLINE_API_PORT": str(listener)})
        explained(run, f"port {listener} (the API) is already taken by pid ", "DRIFTLINE_API_PORT")


async def test_infra_port_taken(settings: Settings, listener: int, tmp_path: Path) -> None:
    """A second checkout's `infra up` while another's Kafka runs: the port, its holder and
    the setting, not a Java BindException."""
    offset = listener - settings.kafka_port
    run = await driftline(
        settings,
        "infra",
        "up",
        "--only",
        "kafka",
        "--home",
        str(tmp_path / "second-checkout"),
        "--port-offset",
        str(offset),
    )
    err = explained(
        run, f"port {listener} (Kafka) is already taken by pid ", "DRIFTLINE_KAFKA_PORT"
    )
    assert "python" in err and "BindException" not in run.text


async def test_debug_shows_the_traceback(settings: Settings) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    run = await driftline(
        settings, "--debug", "submit", EXAMPLE, "--api-url", url, "--api-key", "k"
    )
    assert run.code == 1 and "Traceback" in run.err and "error: The API at" in run.err
