"""`driftline object-types [WORDS]`: the Leeway categories, searchable by words."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from driftline.contracts.object_types import ObjectType, search_object_types

console = Console()


def object_types_command(
    words: Annotated[
        list[str] | None,
        typer.Argument(help="Words that must all appear in the key or description, or the id."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """The 85 OpenDrift Leeway object types a mission's `object_type` may name (key or id),
    with their leeway coefficients; only those matching every word given.

    Example: driftline object-types life raft
    Example: driftline object-types PIW --json
    """
    found = search_object_types(words or [])
    if as_json:
        print(json.dumps([c.model_dump() for c in found], indent=1))
        return
    if not found:
        console.print(f"no object type matches {' '.join(words or [])!r}")
        raise typer.Exit(1)
    console.print(_table(found))


def _table(categories: list[ObjectType]) -> Table:
    """Downwind and crosswind leeway as slope (% of U10) + offset ± std (cm/s)."""
    table = Table("id", "key", "description", "downwind", "crosswind (right / left)")
    for c in categories:
        lw = c.leeway
        downwind = f"{lw.downwind_slope:g} % {lw.downwind_offset_cm_s:+g} ±{lw.downwind_std_cm_s:g}"
        right = f"{lw.crosswind_right_slope:g} % {lw.crosswind_right_offset_cm_s:+g}"
        left = f"{lw.crosswind_left_slope:g} % {lw.crosswind_left_offset_cm_s:+g}"
        table.add_row(str(c.id), c.key, c.description, downwind, f"{right} / {left}")
    table.caption = "leeway = slope x 10 m wind speed + offset, in cm/s (± standard deviation)"
    return table
