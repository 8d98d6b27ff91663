"""`driftline infra`: start, stop and inspect the local Kafka, PostgreSQL and MinIO."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from driftline.errors import InfraError
from driftline.infra.manager import SERVICES, LocalServices
from driftline.settings import load_settings

infra_app = typer.Typer(
    help="The real local services: Apache Kafka (KRaft, jars from Maven Central), "
    "PostgreSQL (Debian's packages) and MinIO (built from the Go module proxy). "
    "Everything is cached under DRIFTLINE_INFRA_DIR (default .driftline/).",
    no_args_is_help=True,
)
console = Console(stderr=True)

OnlyOpt = Annotated[
    list[str] | None,
    typer.Option("--only", help="kafka | postgres | minio (repeatable); default all three."),
]
NodesOpt = Annotated[
    int,
    typer.Option(
        "--kafka-nodes",
        help="1 (default, port DRIFTLINE_KAFKA_PORT) or 3 (a separate failover cluster on "
        "DRIFTLINE_KAFKA_PORT+100, +102, +104; RF 3, min.insync.replicas 2).",
    ),
]


def _services(kafka_nodes: int) -> LocalServices:
    if kafka_nodes not in (1, 3):
        raise typer.BadParameter("--kafka-nodes is 1 or 3")
    return LocalServices(load_settings(), kafka_nodes=kafka_nodes)


@infra_app.command()
def up(only: OnlyOpt = None, kafka_nodes: NodesOpt = 1) -> None:
    """Start the services (idempotent: running ones are left alone), apply migrations,
    create the bucket; waits until each answers."""
    services = _services(kafka_nodes)
    try:
        took = services.up(only or SERVICES)
    except InfraError as exc:
        console.print(f"[red]infra up failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    _print_status(services)
    console.print(f"ready in {took:.1f} s")


@infra_app.command()
def down(only: OnlyOpt = None, kafka_nodes: NodesOpt = 1) -> None:
    """Stop what `up` started (data stays in the infra folder)."""
    services = _services(kafka_nodes)
    stopped = services.down(only or SERVICES)
    console.print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")


@infra_app.command()
def status(kafka_nodes: NodesOpt = 1) -> None:
    """Each service's address, pid and health."""
    services = _services(kafka_nodes)
    _print_status(services)


def _print_status(services: LocalServices) -> None:
    table = Table("service", "address", "pid", "health")
    for state in services.status():
        health = "[green]healthy[/green]" if state.healthy else "[red]down[/red]"
        table.add_row(state.name, state.address, str(state.pid or "-"), health)
    Console().print(table)
