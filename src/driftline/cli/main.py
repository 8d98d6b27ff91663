"""`driftline`: the operator's command line (processes, topics, keys, missions, DLQ, infra).

Heavy imports (OpenDrift, FastAPI, aiokafka) happen inside the commands, so `--help`
answers at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Column, Table

from driftline.cli import missions as mission_commands
from driftline.cli import object_types as object_type_commands
from driftline.cli import observe
from driftline.cli import plan as plan_commands
from driftline.cli import up as up_commands
from driftline.cli.failures import CliError
from driftline.cli.failures import report as report_failure
from driftline.cli.infra import infra_app
from driftline.cli.webhooks import webhooks_app
from driftline.settings import Settings, load_settings

app = typer.Typer(
    name="driftline",
    help="Driftline: drift prediction for maritime search and rescue. "
    "Settings come from DRIFTLINE_* environment variables or .env (see .env.example). "
    "The REST API is described in docs/api.md, the events in docs/events.md.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(infra_app, name="infra")
app.add_typer(webhooks_app, name="webhooks")
app.command()(observe.lag)
app.command()(observe.top)
app.command()(up_commands.up)
app.command()(up_commands.ready)
app.command()(mission_commands.submit)
app.command("plan")(plan_commands.plan)
app.add_typer(plan_commands.searches_app, name="searches")
app.command("object-types")(object_type_commands.object_types_command)
topics_app = typer.Typer(help="Kafka topics.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys (one tenant per key; stored hashed).", no_args_is_help=True)
missions_app = typer.Typer(
    help="Missions: list and show read PostgreSQL (every tenant, for operators); watch, "
    "cancel and download use the REST API with a tenant's key (DRIFTLINE_API_KEY).",
    no_args_is_help=True,
)
missions_app.command("watch")(mission_commands.watch)
missions_app.command("cancel")(mission_commands.cancel)
missions_app.command("download")(mission_commands.download)
dlq_app = typer.Typer(
    help="Dead letters: list, show and replay records that failed every attempt.",
    no_args_is_help=True,
)
schemas_app = typer.Typer(help="Published event schemas (JSON Schema, AsyncAPI).")
forcing_app = typer.Typer(help="Forcing data.", no_args_is_help=True)
docs_app = typer.Typer(
    help="Reference docs generated from the code: docs/api.md (from the OpenAPI document) "
    "and docs/events.md (from the AsyncAPI document and the event models).",
    no_args_is_help=True,
)
app.add_typer(topics_app, name="topics")
buckets_app = typer.Typer(help="The artifact bucket (S3/MinIO).", no_args_is_help=True)
app.add_typer(buckets_app, name="buckets")
app.add_typer(keys_app, name="keys")
app.add_typer(missions_app, name="missions")
app.add_typer(dlq_app, name="dlq")
app.add_typer(schemas_app, name="schemas")
app.add_typer(forcing_app, name="forcing")
app.add_typer(docs_app, name="docs")

console = Console()


class _Options:
    """Global options, set by `_global_options` before any command runs."""

    debug = False


@app.callback()
def _global_options(
    debug: Annotated[
        bool,
        typer.Option(
            "--debug", envvar="DRIFTLINE_DEBUG", help="Show the traceback of a failure too."
        ),
    ] = False,
) -> None:
    """Options of every command (the help text is the app's)."""
    _Options.debug = debug
    if not debug:
        # Libraries' own error lines (aiokafka retrying a refused connection, say) would
        # repeat what the one-sentence failure says; processes configure real logging.
        logging.getLogger().addHandler(logging.NullHandler())


def _settings() -> Settings:
    return load_settings()


def _process_settings(service: str, **overrides: object) -> Settings:
    """Settings of a long-running process, with its logs and traces configured."""
    from driftline.logs import configure_logging
    from driftline.telemetry import configure_tracing

    settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    configure_logging(settings)
    configure_tracing(settings, service)
    return settings


MetricsPort = Annotated[
    int | None,
    typer.Option(
        "--metrics-port",
        help="Serve /metrics, /healthz and /readyz on this port (DRIFTLINE_METRICS_PORT).",
    ),
]


# -- processes -----------------------------------------------------------------------------


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="Bind address (default from settings).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings).")] = None,
    workers: Annotated[
        int, typer.Option(min=1, help="API processes sharing the port (uvicorn workers).")
    ] = 1,
) -> None:
    """Run the REST API (uvicorn). Apply migrations first: `driftline infra up` does.

    One process answers on one core; `--workers N` runs N of them on the same port
    (docs/benchmarks.md, "Ingest"). Example: driftline api --port 8000 --workers 2
    """
    import uvicorn

    from driftline.api.app import create_app
    from driftline.errors import PortTaken
    from driftline.infra.process import describe_port_holder, port_open

    settings = _process_settings("api")
    bind_port = port or settings.api_port
    if port_open("127.0.0.1", bind_port, 0.3):
        holder = describe_port_holder(bind_port)
        raise PortTaken(bind_port, "the API", holder, "DRIFTLINE_API_PORT or --port")
    if workers > 1:  # each worker process builds its own app (`up.api_app`)
        uvicorn.run(
            "driftline.cli.up:api_app",
            factory=True,
            workers=workers,
            host=host or settings.api_host,
            port=bind_port,
            log_level="info",
            access_log=False,
        )
        return
    uvicorn.run(
        create_app(settings),
        host=host or settings.api_host,
        port=bind_port,
        log_level="info",
        access_log=False,
    )


@app.command()
def worker(
    stage: Annotated[
        str,
        typer.Argument(
            help="validate | fetch_forcing | simulate | postprocess | notify | plan | all"
        ),
    ],
    metrics_port: MetricsPort = None,
    instance: Annotated[
        str | None,
        typer.Option(
            "--instance",
            help="Static group membership: a name unique among this stage's workers and kept "
            "across restarts (e.g. simulate-1), so a crashed worker restarted within the "
            "session timeout takes its partitions back without a rebalance "
            "(DRIFTLINE_KAFKA_GROUP_INSTANCE_ID).",
        ),
    ] = None,
) -> None:
    """Run a pipeline stage's consumer (or all of them in one process). SIGTERM drains.

    Example: driftline worker simulate --metrics-port 9103 --instance simulate-1
    """
    from driftline.bootstrap import run_workers
    from workers import STAGE_REGISTRY

    stages = list(STAGE_REGISTRY) if stage == "all" else [stage]
    if stage != "all" and stage not in STAGE_REGISTRY:
        raise typer.BadParameter(
            f"unknown stage {stage!r}; one of {', '.join(STAGE_REGISTRY)}, all"
        )
    settings = _process_settings(
        f"worker-{stage}", metrics_port=metrics_port, kafka_group_instance_id=instance
    )
    asyncio.run(run_workers(settings, stages))


@app.command()
def relay(metrics_port: MetricsPort = None) -> None:
    """Run the outbox relay (publishes committed events to Kafka). SIGTERM stops it.

    Example: driftline relay --metrics-port 9100
    """
    from driftline.bootstrap import run_relay

    asyncio.run(run_relay(_process_settings("relay", metrics_port=metrics_port)))


@app.command()
def demo(
    once: Annotated[
        bool, typer.Option("--once", help="Stop everything after the sample mission.")
    ] = False,
) -> None:
    """Start the services, API, relay and workers; submit a sample mission and show it.

    Example: driftline demo --once
    """
    from driftline.cli.demo import run_demo

    raise typer.Exit(run_demo(_settings(), once=once))


# -- topics and keys -----------------------------------------------------------------------


@topics_app.command("create")
def topics_create(
    partitions: Annotated[int | None, typer.Option(help="Default: settings.")] = None,
) -> None:
    """Create every Driftline topic that is missing (partitions, replication from settings).

    Example: driftline topics create --partitions 6
    """
    from driftline.contracts.topics import all_topics
    from driftline.runtime.kafka import create_topics
    from driftline.runtime.topic_config import apply_retention

    settings = _settings()
    created = asyncio.run(create_topics(settings, partitions=partitions))
    retained = asyncio.run(apply_retention(settings))
    for name in all_topics(settings.topic_prefix):
        state = "created" if name in created else "retention set" if name in retained else "exists"
        console.print(f"{state:<14} {name}")


@topics_app.command("check")
def topics_check() -> None:
    """Compare every topic's retention with the settings; exit 1 on any difference.

    Example: driftline topics check
    """
    from driftline.runtime.topic_config import check_topics

    rows = asyncio.run(check_topics(_settings()))
    table = Table("topic", "wanted retention (ms)", "actual (ms)", "ok")
    for row in rows:
        actual = "missing" if row.actual_ms is None else str(row.actual_ms)
        table.add_row(row.topic, str(row.wanted_ms), actual, "yes" if row.ok else "NO")
    console.print(table)
    if not all(row.ok for row in rows):
        console.print("run `driftline topics create` to create or fix them")
        raise typer.Exit(1)


@app.command()
def housekeeping(
    once: Annotated[bool, typer.Option(help="One pass, print what was pruned, exit.")] = False,
) -> None:
    """Prune rows past their retention (relays do this already; see docs/operations.md).

    Example: driftline housekeeping --once
    """
    from driftline.bootstrap import run_housekeeping

    pruned = asyncio.run(run_housekeeping(_process_settings("housekeeping"), once=once))
    for table, count in pruned.items():
        console.print(f"{table:<24} {count} row(s) pruned")


@buckets_app.command("configure")
def buckets_configure() -> None:
    """Set the bucket's lifecycle rules: forcing subsets and (if set) artifacts expire.

    Example: driftline buckets configure
    """
    from driftline.storage.lifecycle import configure_bucket

    settings = _settings()
    for rule in asyncio.run(configure_bucket(settings)):
        prefix = rule.get("Filter", {}).get("Prefix", "") or "(everything)"
        days = rule["Expiration"]["Days"]
        console.print(f"{settings.s3_bucket}: {prefix} expires after {days} day(s)")


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option(help="Tenant the key belongs to (created if new).")],
    label: Annotated[str | None, typer.Option(help="Free text to recognise the key.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print {tenant, api_key, webhook_secret} as JSON.")
    ] = False,
) -> None:
    """Create an API key; it is printed once and stored only as a hash.

    The last line is `export DRIFTLINE_API_KEY=...`, for the CLI's API commands.

    Example: eval "$(driftline keys create --tenant jrcc | grep '^export ')"
    """
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
    if as_json:
        print(json.dumps({"tenant": tenant, "api_key": key, "webhook_secret": secret}))
        return
    console.print(f"tenant:          {tenant}")
    console.print(f"api key:         [bold]{key}[/bold]  (shown once)")
    console.print(f"webhook secret:  {secret}  (verifies webhook-signature)")
    print(f"export DRIFTLINE_API_KEY={key}")


@keys_app.command("list")
def keys_list(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's keys.")] = None,
) -> None:
    """Every API key, revoked ones too (the key itself is stored hashed, never shown).

    Example: driftline keys list --tenant jrcc
    """
    from driftline.auth import list_api_keys
    from driftline.db.unit_of_work import Database

    async def fetch() -> list[Any]:
        db = Database(_settings())
        try:
            async with db.unit_of_work() as uow:
                return await list_api_keys(uow, tenant)
        finally:
            await db.close()

    table = Table("tenant", "label", "created", "revoked")
    table.add_column("id", no_wrap=True, overflow="ignore")  # operators copy it to revoke
    for key in asyncio.run(fetch()):
        table.add_row(
            key.tenant,
            key.label or "",
            key.created_at.isoformat(timespec="seconds"),
            key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else "",
            str(key.id),
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id, from `driftline keys list`.")],
) -> None:
    """Revoke an API key: its next request answers 401 (nothing caches keys).

    Example: driftline keys revoke 6f1d2e3c-4b5a-4d7e-9a55-0b7f8a523c41
    """
    import uuid

    from driftline.auth import revoke_api_key
    from driftline.db.unit_of_work import Database

    try:
        parsed = uuid.UUID(key_id)
    except ValueError as exc:
        raise typer.BadParameter(f"{key_id!r} is not a key id (see `driftline keys list`)") from exc

    async def revoke() -> Any:
        db = Database(_settings())
        try:
            async with db.unit_of_work() as uow:
                return await revoke_api_key(uow, parsed)
        finally:
            await db.close()

    key = asyncio.run(revoke())
    if key is None:
        console.print(f"[red]no API key {key_id}[/red]")
        raise typer.Exit(1)
    revoked_at = key.revoked_at.isoformat(timespec="seconds")
    console.print(f"revoked key {key.id} of tenant {key.tenant} at {revoked_at}")


# -- missions ------------------------------------------------------------------------------


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
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """Newest missions first (every tenant's, read from PostgreSQL).

    Example: driftline missions list --tenant jrcc --status held
    """
    rows = _mission_rows(tenant, status, limit)
    if as_json:
        print(json.dumps([_mission_row(m) for m in rows]))
        return
    # The id is what operators copy: never wrapped or cut.
    id_column = Column("id", no_wrap=True, overflow="ignore", min_width=36)
    table = Table(id_column, "tenant", "name", "status", "stage", "progress", "created")
    for m in rows:
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


def _mission_row(m: Any) -> dict[str, Any]:
    return {
        "id": str(m.id),
        "tenant": m.tenant,
        "name": m.name,
        "status": m.status,
        "stage": m.stage,
        "progress": m.progress,
        "created_at": m.created_at.isoformat(),
    }


@missions_app.command("show")
def missions_show(
    mission_id: Annotated[str, typer.Argument(help="The mission's id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Plain JSON, uncoloured.")] = False,
) -> None:
    """One mission as JSON: request, status, failure, results.

    Example: driftline missions show 0b7f8a52-3c41-4d7e-9a55-6f1d2e3c4b5a --json
    """
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

    try:
        uuid.UUID(mission_id)
    except ValueError as exc:
        raise CliError(f"{mission_id!r} is not a mission id (`driftline missions list`).") from exc
    found = asyncio.run(fetch())
    if found is None:
        raise CliError(f"No mission {mission_id} (`driftline missions list` shows them).")
    if as_json:
        print(json.dumps(found, indent=2))
        return
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
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON array (every header of each).")
    ] = False,
) -> None:
    """Dead letters on every stage's `.dlq` topic.

    Example: driftline dlq list --stage simulate --since 2024-01-01T00:00:00
    """
    from driftline.runtime.dead_letters import read_dead_letters

    letters = asyncio.run(read_dead_letters(_settings(), _dlq_filter(stage, mission, since, until)))
    if as_json:
        print(json.dumps([_dead_letter(lt) for lt in letters]))
        return
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


def _dead_letter(lt: Any) -> dict[str, Any]:
    return {
        "ref": lt.ref,
        "stage": lt.stage,
        "mission_id": lt.mission_id,
        "ce_id": lt.event_id,
        "key": (lt.key or b"").decode("utf-8", "replace"),
        "headers": lt.attrs,
        "value": (lt.value or b"").decode("utf-8", "replace"),
    }


@dlq_app.command("show")
def dlq_show(
    ref: Annotated[str, typer.Argument(help="topic:partition:offset or a ce_id")],
    as_json: Annotated[bool, typer.Option("--json", help="Plain JSON, uncoloured.")] = False,
) -> None:
    """Every header and the value of one dead letter.

    Example: driftline dlq show driftline.forcing.ready.dlq:0:12
    """
    from driftline.runtime.dead_letters import read_dead_letters

    for lt in asyncio.run(read_dead_letters(_settings())):
        if ref in (lt.ref, lt.event_id):
            letter = _dead_letter(lt)
            if as_json:
                print(json.dumps(letter, indent=2))
            else:
                console.print_json(json.dumps(letter))
            return
    raise CliError(f"No dead letter {ref} (`driftline dlq list` shows them).")


@dlq_app.command("replay")
def dlq_replay(
    stage: StageOpt = None,
    mission: MissionOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would go.")] = False,
) -> None:
    """Re-publish dead letters to their original topic (keeping ce_id); never twice.

    Example: driftline dlq replay --stage simulate --dry-run
    """
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
    """Write JSON Schema per event and the AsyncAPI document of the topics.

    Example: driftline schemas write --out schemas
    """
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


@docs_app.command("write")
def docs_write(
    out: Annotated[Path, typer.Option(help="The docs folder.")] = Path("docs"),
) -> None:
    """Regenerate the generated parts of docs/api.md and docs/events.md from the code.

    Example: driftline docs write
    """
    from driftline.reference_docs import write_reference_docs

    for path in write_reference_docs(out):
        console.print(f"wrote {path}")


def main() -> None:
    """The `driftline` entry point: an expected failure ends as one or two sentences on
    stderr and a non-zero exit (cli/failures.py), a traceback only with --debug."""
    try:
        app()
    except (Exception, KeyboardInterrupt) as exc:
        sys.exit(report_failure(exc, debug=_Options.debug))


if __name__ == "__main__":
    main()
