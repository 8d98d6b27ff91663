"""`driftline demo` (and `make demo`): the whole pipeline on this machine, one sample mission.

Brings up Kafka, PostgreSQL and MinIO, writes sample forcing and its catalog, starts the
API, the outbox relay and all five workers as separate processes (as in production),
creates an API key, submits `examples/mission.json` over HTTP, follows its progress and
prints the summary and where every artifact is.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx
from rich.console import Console

from driftline.settings import PROJECT_ROOT, Settings

console = Console()
SAMPLE_START = datetime(2024, 1, 1)
SAMPLE_HOURS = 72


def _write_demo_catalog(settings: Settings, demo_dir: Path) -> Path:
    from driftline.forcing.sample import write_sample_catalog

    catalog = demo_dir / "forcing" / "catalog.json"
    if catalog.exists():
        return catalog
    write_sample_catalog(demo_dir / "forcing", start=SAMPLE_START, hours=SAMPLE_HOURS)
    return catalog


def _spawn(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    handle = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "driftline.cli.main", *args],
        stdout=handle,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )


def _wait_http(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} did not answer within {timeout_s:.0f} s")


def run_demo(settings: Settings, *, once: bool) -> int:
    """Returns the process exit code: 0 when the sample mission completed."""
    import asyncio

    from driftline.auth import create_api_key
    from driftline.cli.client import ApiClient
    from driftline.cli.missions import follow_and_report
    from driftline.db.unit_of_work import Database
    from driftline.infra.manager import LocalServices

    console.rule("[bold]Driftline demo")
    console.print("1/5 starting Kafka, PostgreSQL and MinIO (first run fetches and builds them)")
    local = LocalServices(settings)
    took = local.up()
    console.print(
        f"    services ready in {took:.1f} s: Kafka {local.kafka_bootstrap_servers}, "
        f"PostgreSQL 127.0.0.1:{settings.postgres_port}, MinIO {local.minio.endpoint}"
    )

    demo_dir = settings.infra_dir / "demo"
    catalog = _write_demo_catalog(settings, demo_dir)
    env = {
        **os.environ,
        "DRIFTLINE_FORCING_CATALOG": str(catalog),
        "DRIFTLINE_S3_ENDPOINT_URL": settings.s3_endpoint_url or local.minio.endpoint,
        "DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS": local.kafka_bootstrap_servers,
        "DRIFTLINE_DATABASE_URL": local.postgres.database_url,
    }
    console.print(f"2/5 sample forcing and catalog: {catalog}")
    logs = settings.infra_dir / "logs"
    console.print(f"3/5 starting API, relay and workers (logs in {logs}/demo-*.log)")
    procs = {
        "api": _spawn(["api"], logs / "demo-api.log", env),
        "relay": _spawn(["relay"], logs / "demo-relay.log", env),
        "workers": _spawn(["worker", "all"], logs / "demo-workers.log", env),
    }
    try:
        base = settings.public_base_url
        _wait_http(f"{base}/healthz", 60)

        async def new_key() -> str:
            db = Database(
                settings.model_copy(update={"database_url": env["DRIFTLINE_DATABASE_URL"]})
            )
            try:
                async with db.unit_of_work() as uow:
                    return await create_api_key(uow, "demo", "make demo")
            finally:
                await db.close()

        api_key = asyncio.run(new_key())
        console.print(f"4/5 API key for tenant 'demo': {api_key}")
        body = json.loads((PROJECT_ROOT / "examples" / "mission.json").read_text())
        client = ApiClient(base, api_key)
        accepted = client.submit(body)
        mission_id = accepted["id"]
        console.print(
            f"5/5 mission {mission_id} accepted (202); following it "
            "(the simulation pool warms up once, ~20 s):"
        )
        status = follow_and_report(client, mission_id, console)
        if status == "completed":
            results = client.results(mission_id)
            out = demo_dir / "results" / mission_id
            for artifact in results["artifacts"]:
                target = out / artifact["name"]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(client.artifact(mission_id, artifact["name"]))
            bucket = settings.s3_bucket
            console.print(
                f"artifacts in s3://{bucket}/demo/{mission_id}/ (MinIO "
                f"{env['DRIFTLINE_S3_ENDPOINT_URL']}), served by the API at "
                f"{base}/v1/missions/{mission_id}/artifacts/<name>"
            )
            console.print(f"downloaded copies: {out}  (map: {out / 'products' / 'map.png'})")
        console.print(
            f"console: {base}/console/#/missions/{mission_id}  (works offline; sign in "
            f"with the demo key {api_key})"
        )
        if once:
            return 0 if status == "completed" else 1
        console.print(f"everything keeps running; API at {base} (key above). Ctrl-C stops.")
        while all(p.poll() is None for p in procs.values()):
            time.sleep(1)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
        console.print(
            "API, relay and workers stopped; services keep running (`make infra-down` stops them)."
        )
