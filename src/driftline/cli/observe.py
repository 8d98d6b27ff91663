"""`driftline lag` and `driftline top`: what an operator looks at first.

`lag` prints each stage's backlog and how long it would take at the current rate; `top`
refreshes the same with mission counts per status and the outbox backlog, live.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Annotated

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from driftline.runtime.lag import StageLag, sample_lag
from driftline.settings import Settings, load_settings

console = Console()


def _stages() -> list[tuple[str, str]]:
    from workers import STAGE_REGISTRY

    return [(name, stage.consumes.topic) for name, stage in STAGE_REGISTRY.items()]


def _eta(row: StageLag) -> str:
    if row.lag and row.rate_per_s is None:
        return "-"  # not sampled twice
    seconds = row.eta_s
    if seconds is None:
        return "stalled"
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def lag_table(rows: list[StageLag]) -> Table:
    table = Table("stage", "group", "partitions", "lag", "rate/s", "clears in")
    for column in table.columns:
        column.overflow = "fold"
    for row in rows:
        rate = "-" if row.rate_per_s is None else f"{row.rate_per_s:.1f}"
        table.add_row(row.stage, row.group, str(row.partitions), str(row.lag), rate, _eta(row))
    return table


def lag(
    interval: Annotated[
        float, typer.Option(help="Seconds between the two samples that give the rate (0: none).")
    ] = 3.0,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Consumer lag per stage and how long each backlog would take at the current rate.

    Example: driftline lag --interval 5
    """
    rows = asyncio.run(sample_lag(load_settings(), _stages(), interval))
    if as_json:
        print(json.dumps([{**r.__dict__, "lag": r.lag, "eta_s": r.eta_s} for r in rows]))
        return
    console.print(lag_table(rows))


async def _snapshot(settings: Settings, interval: float) -> Group:
    from driftline.db.unit_of_work import Database

    database = Database(settings)
    try:
        async with database.unit_of_work() as uow:
            statuses = await uow.missions.count_by_status()
            backlog = await uow.outbox.backlog()
    finally:
        await database.close()
    rows = await sample_lag(settings, _stages(), interval)
    missions = Table("status", "missions")
    for status, count in sorted(statuses.items()):
        missions.add_row(status, str(count))
    return Group(lag_table(rows), missions, f"outbox rows waiting for the relay: {backlog}")


def top(
    interval: Annotated[float, typer.Option(help="Refresh every this many seconds.")] = 3.0,
    once: Annotated[bool, typer.Option(help="Print one snapshot and exit.")] = False,
) -> None:
    """A live view: lag per stage, missions per status (held ones included), outbox backlog.

    Example: driftline top --interval 5
    """
    settings = load_settings()

    async def run() -> None:
        if once:
            console.print(await _snapshot(settings, interval))
            return
        with Live(await _snapshot(settings, interval), console=console) as live:
            while True:
                live.update(await _snapshot(settings, interval))

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
