"""`driftline webhooks`: run a dispatcher, look at deliveries and their attempts, redeliver."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from driftline.settings import Settings, load_settings

webhooks_app = typer.Typer(
    help="Webhook deliveries: run a dispatcher, list them, show their attempts, redeliver.",
    no_args_is_help=True,
)
console = Console()
T = TypeVar("T")


def _with_database(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    from driftline.db.unit_of_work import Database

    async def run() -> T:
        database = Database(settings)
        try:
            return await work(database)
        finally:
            await database.close()

    return asyncio.run(run())


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else ""


@webhooks_app.command("run")
def webhooks_run(
    metrics_port: Annotated[
        int | None,
        typer.Option("--metrics-port", help="Serve /metrics, /healthz and /readyz here."),
    ] = None,
) -> None:
    """Run a webhook dispatcher alone (every notify worker runs one too). SIGTERM stops it.

    Several may run: each claims due deliveries with SKIP LOCKED.

    Example: driftline webhooks run --metrics-port 9105
    """
    from driftline.bootstrap import run_webhook_dispatcher
    from driftline.cli.main import _process_settings

    asyncio.run(run_webhook_dispatcher(_process_settings("webhooks", metrics_port=metrics_port)))


@webhooks_app.command("list")
def webhooks_list(
    mission: Annotated[str | None, typer.Option(help="Only this mission id.")] = None,
    failed: Annotated[
        bool, typer.Option("--failed", help="Only deliveries that will not be tried again.")
    ] = False,
    limit: Annotated[int, typer.Option()] = 100,
) -> None:
    """Deliveries, newest first: state, attempts, last answer, next attempt.

    Example: driftline webhooks list --failed
    """
    mission_id = uuid.UUID(mission) if mission else None

    async def fetch(database: Any) -> list[Any]:
        async with database.unit_of_work() as uow:
            return await uow.webhooks.listing(mission_id=mission_id, failed=failed, limit=limit)

    deliveries = _with_database(load_settings(), fetch)
    table = Table("state", "attempts", "last", "next attempt / delivered")
    table.add_column("url", overflow="fold")  # a link is folded whole, never cut
    for name in ("webhook id", "mission"):  # identifiers operators copy: never wrapped
        table.add_column(name, no_wrap=True, overflow="ignore")
    for d in deliveries:
        last = d.last_error or (f"HTTP {d.last_status}" if d.last_status else "")
        table.add_row(
            d.state,
            str(d.attempts),
            last[:60],
            _when(d.delivered_at or d.next_attempt_at),
            d.url,
            d.webhook_id,
            str(d.mission_id),
        )
    console.print(table)
    console.print(f"{len(deliveries)} deliveries")


@webhooks_app.command("show")
def webhooks_show(webhook_id: Annotated[str, typer.Argument(help="The webhook id.")]) -> None:
    """One delivery and every attempt made at it.

    Example: driftline webhooks show msg_4f0c2b9e8d7a41c6b3e2f1a0d9c8b7a6
    """

    async def fetch(database: Any) -> tuple[Any, list[Any]]:
        async with database.unit_of_work() as uow:
            return await uow.webhooks.get(webhook_id), await uow.webhooks.attempts(webhook_id)

    delivery, attempts = _with_database(load_settings(), fetch)
    if delivery is None:
        console.print(f"[red]no webhook delivery {webhook_id}[/red]")
        raise typer.Exit(1)
    console.print(
        f"{delivery.webhook_id}  mission {delivery.mission_id}  {delivery.state}, "
        f"{delivery.attempts} attempt(s); next {_when(delivery.next_attempt_at) or '-'}\n"
        f"url {delivery.url}"
    )
    table = Table("#", "at", "ms", "address", "status", "verdict", "error")
    for a in attempts:
        table.add_row(
            str(a.number),
            _when(a.at),
            str(a.duration_ms),
            a.address or "",
            str(a.status_code or ""),
            a.verdict,
            a.error or "",
        )
    console.print(table)


@webhooks_app.command("redeliver")
def webhooks_redeliver(
    webhook_id: Annotated[str, typer.Argument(help="The webhook id (see `webhooks list`).")],
) -> None:
    """Send a delivery again now, same webhook id, with a fresh retry schedule behind it.

    Example: driftline webhooks redeliver msg_4f0c2b9e8d7a41c6b3e2f1a0d9c8b7a6
    """
    from driftline.runtime.webhook_dispatcher import WebhookDispatcher

    settings = load_settings()

    async def redeliver(database: Any) -> Any:
        return await WebhookDispatcher(settings, database).redeliver(webhook_id)

    done = _with_database(settings, redeliver)
    if done is None:
        console.print(f"[red]no webhook delivery {webhook_id}[/red]")
        raise typer.Exit(1)
    d = done.delivery
    if d.payload is None:
        console.print(f"[red]{webhook_id} was recorded before its body was kept; not resent[/red]")
        raise typer.Exit(1)
    if not done.attempted:
        console.print(f"{webhook_id}: queued (a dispatcher is sending it, or its mission is not")
        console.print("completed); `driftline webhooks show` follows it")
        return
    answer = f"HTTP {d.last_status}" if d.last_status else (d.last_error or "")
    follow = f"; next attempt at {_when(d.next_attempt_at)}" if d.next_attempt_at else ""
    console.print(f"{webhook_id}: attempt {d.attempts}: {d.state} ({answer}){follow}")
