"""`driftline`: the operator's command line (processes, topics, keys, missions, DLQ, infra).

Heavy imports (OpenDrift, FastAPI, aiokafka) happen inside the commands, so `--help`
answers at once.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from driftline.cli.infra import infra_app
from driftline.settings import Settings, load_settings

app = typer.Typer(
    name="driftline",
    help="Driftline: drift prediction for maritime search and rescue. "
    "Settings come from DRIFTLINE_* environment variables or .env (see .env.example).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(infra_app, name="infra")
topics_app = typer.Typer(help="Kafka topics.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys (one tenant per key; stored hashed).", no_args_is_help=True)
missions_app = typer.Typer(help="Look at missions (reads PostgreSQL).", no_args_is_help=True)
dlq_app = typer.Typer(
    help="Dead letters: list, show and replay records that failed every attempt.",
    no_args_is_help=True,
)
schemas_app = typer.Typer(help="Published event schemas (JSON Schema, AsyncAPI).")
forcing_app = typer.Typer(help="Forcing data.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")
app.add_typer(keys_app, name="keys")
app.add_typer(missions_app, name="missions")
app.add_typer(dlq_app, name="dlq")
app.add_typer(schemas_app, name="schemas")
app.add_typer(forcing_app, name="forcing")

console = Console()


def _settings() -> Settings:
    return load_settings()


# -- processes -----------------------------------------------------------------------------


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="Bind address (default from settings).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings).")] = None,
) -> None:
    """Run the REST API (uvicorn). Apply migrations first: `driftline infra up` does."""
    import uvicorn

    from driftline.api.app import create_app

    settings = _settings()
    uvicorn.run(
        create_app(settings),
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_level="info",
        access_log=False,
    )


@app.command()
def worker(
    stage: Annotated[
        str, typer.Argument(help="validate | fetch_forcing | simulate | postprocess | notify | all")
    ],
) -> None:
    """Run a pipeline stage's consumer (or all of them in one process). SIGTERM drains."""
    from driftline.bootstrap import run_workers
    from workers import STAGE_REGISTRY

    stages = list(STAGE_REGISTRY) if stage == "all" else [stage]
    if stage != "all" and stage not in STAGE_REGISTRY:
        raise typer.BadParameter(
            f"unknown stage {stage!r}; one of {', '.join(STAGE_REGISTRY)}, all"
        )
    asyncio.run(run_workers(_settings(), stages))


@app.command()
def relay() -> None:
    """Run the outbox relay (publishes committed events to Kafka). SIGTERM stops it."""
    from driftline.bootstrap import run_relay

    asyncio.run(run_relay(_settings()))


@app.command()
def demo(
    once: Annotated[
        bool, typer.Option("--once", help="Stop everything after the sample mission.")
    ] = False,
) -> None:
    """Start the services, API, relay and workers; submit a sample mission and show it."""
    from driftline.cli.demo import run_demo

    raise typer.Exit(run_demo(_settings(), once=once))


# -- topics and keys -----------------------------------------------------------------------


@topics_app.command("create")
def topics_create(
    partitions: Annotated[int | None, typer.Option(help="Default: settings.")] = None,
) -> None:
    """Create every Driftline topic that is missing (partitions, replication from settings)."""
    from driftline.contracts.topics import all_topics
    from driftline.runtime.kafka import create_topics

    settings = _settings()
    created = asyncio.run(create_topics(settings, partitions=partitions))
    for name in all_topics(settings.topic_prefix):
        console.print(f"{'created' if name in created else 'exists '}  {name}")


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option(help="Tenant the key belongs to (created if new).")],
    label: Annotated[str | None, typer.Option(help="Free text to recognise the key.")] = None,
) -> None:
    """Create an API key; it is printed once and stored only as a hash."""
    from driftline.auth import create_api_key, webhook_secret
    from driftline.db.unit_of_work import Database

    async def create() -> tuple[str, str | None]:
        db = Database(_settings())
        try:
            async with db.unit_of_work() as uow:
                key = await create_api_key(uow, tenant, label)
            async with db.unit_of_work() as uow:
                secret = await webhook_secret(uow, tenant)
            return key, secret
        finally:
            await db.close()

    key, secret = asyncio.run(create())
    console.print(f"tenant:          {tenant}")
    console.print(f"api key:         [bold]{key}[/bold]  (shown once)")
    console.print(f"webhook secret:  {secret}  (verifies webhook-signature)")


# -- missions ------------------------------------------------------------------------------


@app.command()
def submit(
    file: Annotated[Path, typer.Argument(help="Mission request JSON (see DESIGN.md).")],
    wait: Annotated[bool, typer.Option("--wait", help="Follow progress until final.")] = False,
    api_url: Annotated[str | None, typer.Option(help="Default: settings.public_base_url.")] = None,
    api_key: Annotated[
        str | None, typer.Option(envvar="DRIFTLINE_API_KEY", help="Bearer key.")
    ] = None,
    idempotency_key: Annotated[str | None, typer.Option(help="Idempotency-Key header.")] = None,
) -> None:
    """Submit a mission over HTTP; with --wait, show live progress and the results."""
    from driftline.cli.client import MissionClient, follow_and_report

    if not api_key:
        raise typer.BadParameter("an API key is needed: --api-key or DRIFTLINE_API_KEY")
    body = json.loads(file.read_text())
    client = MissionClient(api_url or _settings().public_base_url, api_key)
    accepted = client.submit(body, idempotency_key=idempotency_key)
    console.print(f"accepted: mission [bold]{accepted['id']}[/bold]")
    if wait:
        final = follow_and_report(client, accepted["id"], console)
        raise typer.Exit(0 if final == "completed" else 1)


def _mission_rows(tenant: str | None, status: str | None, limit: int) -> list[Any]:
    from driftline.db.unit_of_work import Database

    async def fetch() -> list[Any]:
        db = Database(_settings())
        try:
            async with db.unit_of_work() as uow:
                return await uow.missions.page(tenant=tenant, limit=limit, status=status)
        finally:
            await db.close()

    return asyncio.run(fetch())


@missions_app.command("list")
def missions_list(
    tenant: Annotated[str | None, typer.Option()] = None,
    status: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option()] = 50,
) -> None:
    """Newest missions first."""
    table = Table("id", "tenant", "name", "status", "stage", "progress", "created")
    for m in _mission_rows(tenant, status, limit):
        table.add_row(
            str(m.id),
            m.tenant,
            m.name,
            m.status,
            m.stage,
            f"{m.progress:.0%}",
            m.created_at.isoformat(timespec="seconds"),
        )
    console.print(table)


@missions_app.command("show")
def missions_show(mission_id: str) -> None:
    """One mission as JSON: request, status, failure, results."""
    import uuid

    from driftline.db.unit_of_work import Database
    from driftline.missions import to_public

    async def fetch() -> dict[str, Any] | None:
        settings = _settings()
        db = Database(settings)
        try:
            async with db.unit_of_work() as uow:
                mission = await uow.missions.get(uuid.UUID(mission_id))
                if mission is None:
                    return None
                out = to_public(mission, settings.public_base_url).model_dump(mode="json")
                out["tenant"] = mission.tenant
                out["result"] = mission.result
                return out
        finally:
            await db.close()

    found = asyncio.run(fetch())
    if found is None:
        console.print(f"[red]no mission {mission_id}[/red]")
        raise typer.Exit(1)
    console.print_json(json.dumps(found))


# -- dead letters --------------------------------------------------------------------------


def _dlq_filter(
    stage: str | None, mission: str | None, since: datetime | None, until: datetime | None
) -> Any:
    from datetime import UTC

    from driftline.runtime.dead_letters import DeadLetterFilter

    def zoned(value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value and value.tzinfo is None else value

    return DeadLetterFilter(stage=stage, mission_id=mission, since=zoned(since), until=zoned(until))


StageOpt = Annotated[str | None, typer.Option(help="Only this stage's dead letters.")]
MissionOpt = Annotated[str | None, typer.Option(help="Only this mission id.")]
SinceOpt = Annotated[datetime | None, typer.Option(help="Failed at or after (UTC).")]
UntilOpt = Annotated[datetime | None, typer.Option(help="Failed at or before (UTC).")]


@dlq_app.command("list")
def dlq_list(
    stage: StageOpt = None,
    mission: MissionOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
) -> None:
    """Dead letters on every stage's `.dlq` topic."""
    from driftline.runtime.dead_letters import read_dead_letters

    letters = asyncio.run(read_dead_letters(_settings(), _dlq_filter(stage, mission, since, until)))
    table = Table("stage", "attempts", "error", "failed at")
    for name in ("ref", "mission", "ce_id"):  # identifiers operators copy: never wrapped
        table.add_column(name, no_wrap=True, overflow="ignore")
    for lt in letters:
        a = lt.attrs
        table.add_row(
            lt.stage,
            a.get("dlq_attempts", ""),
            f"{a.get('dlq_error_type', '')}: {a.get('dlq_error_message', '')[:60]}",
            a.get("dlq_last_failure_time", ""),
            lt.ref,
            lt.mission_id,
            lt.event_id,
        )
    console.print(table)
    console.print(f"{len(letters)} dead letter(s)")


@dlq_app.command("show")
def dlq_show(ref: Annotated[str, typer.Argument(help="topic:partition:offset or a ce_id")]) -> None:
    """Every header and the value of one dead letter."""
    from driftline.runtime.dead_letters import read_dead_letters

    for lt in asyncio.run(read_dead_letters(_settings())):
        if ref in (lt.ref, lt.event_id):
            console.print_json(
                json.dumps(
                    {
                        "ref": lt.ref,
                        "key": (lt.key or b"").decode("utf-8", "replace"),
                        "headers": lt.attrs,
                        "value": (lt.value or b"").decode("utf-8", "replace"),
                    }
                )
            )
            return
    console.print(f"[red]no dead letter {ref}[/red]")
    raise typer.Exit(1)


@dlq_app.command("replay")
def dlq_replay(
    stage: StageOpt = None,
    mission: MissionOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would go.")] = False,
) -> None:
    """Re-publish dead letters to their original topic (keeping ce_id); never twice."""
    from driftline.db.unit_of_work import Database
    from driftline.runtime.dead_letters import replay_dead_letters

    async def replay() -> Any:
        settings = _settings()
        db = Database(settings)
        try:
            return await replay_dead_letters(
                settings, db, _dlq_filter(stage, mission, since, until), dry_run=dry_run
            )
        finally:
            await db.close()

    report = asyncio.run(replay())
    verb = "would replay" if dry_run else "replayed"
    for lt in report.replayed:
        console.print(
            f"{verb} {lt.ref} -> {lt.attrs.get('dlq_original_topic')} "
            f"(mission {lt.mission_id}, ce_id {lt.event_id})"
        )
    for lt in report.skipped:
        console.print(f"skipped {lt.ref} (already replayed)")
    console.print(f"{len(report.replayed)} {verb}, {len(report.skipped)} already replayed")


# -- schemas and forcing -------------------------------------------------------------------


@schemas_app.command("write")
def schemas_write(
    out: Annotated[Path, typer.Option(help="Folder for the schema files.")] = Path("schemas"),
) -> None:
    """Write JSON Schema per event and the AsyncAPI document of the topics."""
    from driftline.contracts.schemas import write_schemas

    for path in write_schemas(out):
        console.print(f"wrote {path}")


@forcing_app.command("sample")
def forcing_sample(
    out: Annotated[Path, typer.Option(help="Folder for the NetCDF files.")] = Path("forcing"),
    lat: Annotated[float, typer.Option()] = 60.0,
    lon: Annotated[float, typer.Option()] = 4.0,
    start: Annotated[datetime, typer.Option(help="UTC start.")] = datetime(2024, 1, 1),
    hours: Annotated[int, typer.Option()] = 72,
) -> None:
    """Write a realistic sample current + wind pair (CF NetCDF) and a catalog naming them.

    Example: driftline forcing sample --out forcing --hours 72
    """
    from driftline.forcing.sample import write_sample_catalog

    catalog = write_sample_catalog(out, lat=lat, lon=lon, start=start, hours=hours)
    console.print(f"current.nc, wind.nc and catalog.json written to {out}/; now run:")
    print(f"export DRIFTLINE_FORCING_CATALOG={catalog.resolve()}")


if __name__ == "__main__":
    app()
