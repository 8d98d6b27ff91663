"""`driftline infra`: start, stop and inspect the local Kafka, PostgreSQL and MinIO."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from driftline.infra.manager import KAFKA_SHAPES, SERVICES, LocalServices
from driftline.infra.process import (
    ServiceState,
    describe_port_holder,
    port_holder_pid,
    port_open,
)
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
AnyNodesOpt = Annotated[
    int | None,
    typer.Option(
        "--kafka-nodes",
        help="Only the 1- or 3-node Kafka cluster; default: every cluster `up` started.",
    ),
]
HomeOpt = Annotated[
    Path | None,
    typer.Option(
        "--home",
        help="An isolated set of services with its data, pids and logs in this folder "
        "(sharing the default set's fetched jars and built binaries); use with --port-offset.",
    ),
]
OffsetOpt = Annotated[
    int,
    typer.Option(
        "--port-offset", help="Added to every port of the set (Kafka, PostgreSQL, MinIO)."
    ),
]


def _services(kafka_nodes: int, home: Path | None = None, port_offset: int = 0) -> LocalServices:
    if kafka_nodes not in KAFKA_SHAPES:
        raise typer.BadParameter("--kafka-nodes is 1 or 3")
    settings = load_settings()
    if home is None and port_offset == 0:
        return LocalServices(settings, kafka_nodes=kafka_nodes)
    return LocalServices.isolated(
        settings, home or settings.infra_dir, port_offset, kafka_nodes=kafka_nodes
    )


@infra_app.command()
def up(
    only: OnlyOpt = None,
    kafka_nodes: NodesOpt = 1,
    home: HomeOpt = None,
    port_offset: OffsetOpt = 0,
) -> None:
    """Start the services (idempotent: running ones are left alone), apply migrations,
    create the bucket; waits until each answers.

    Example: driftline infra up --only kafka --only postgres
    """
    services = _services(kafka_nodes, home, port_offset)
    took = services.up(only or SERVICES)  # failures are worded by cli/failures.py
    _print_status(services)
    console.print(f"ready in {took:.1f} s")


@infra_app.command()
def down(
    only: OnlyOpt = None,
    kafka_nodes: AnyNodesOpt = None,
    home: HomeOpt = None,
    port_offset: OffsetOpt = 0,
) -> None:
    """Stop what `up` started, whatever its Kafka node count (data stays in the folder).

    Example: driftline infra down --only minio
    """
    services = _services(kafka_nodes or 1, home, port_offset)
    stopped = services.down(only or SERVICES, every_cluster=kafka_nodes is None)
    console.print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")


@infra_app.command()
def status(
    kafka_nodes: AnyNodesOpt = None, home: HomeOpt = None, port_offset: OffsetOpt = 0
) -> None:
    """Each service's address, pid and health (every running Kafka cluster by default).

    A service this checkout did not start shows as "running, not started by this checkout".

    Example: driftline infra status
    """
    services = _services(kafka_nodes or 1, home, port_offset)
    _print_status(services, every_cluster=kafka_nodes is None)


def _print_status(services: LocalServices, *, every_cluster: bool = False) -> None:
    table = Table("service", "address", "pid", "health")
    for state in services.status(every_cluster=every_cluster):
        table.add_row(state.name, state.address, *_pid_and_health(state))
    Console().print(table)


def _pid_and_health(state: ServiceState) -> tuple[str, str]:
    """A service this checkout did not start (no pid file of ours) is named as such, with
    the pid of whatever holds its port."""
    if state.pid is not None:
        return str(state.pid), "[green]healthy[/green]" if state.healthy else "[red]down[/red]"
    port = int(state.address.rsplit(":", 1)[1])
    if not state.healthy and not port_open("127.0.0.1", port, 0.3):
        return "-", "[red]down[/red]"
    holder = port_holder_pid(port)
    if state.healthy:
        return str(holder or "?"), "[yellow]running, not started by this checkout[/yellow]"
    return str(holder or "?"), f"[red]port taken by {describe_port_holder(port)}[/red]"
