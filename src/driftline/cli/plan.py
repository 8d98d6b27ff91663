"""A coordinator's search-planning commands over the REST API: `driftline plan` asks for
a plan for the units at hand and shows its briefing; `driftline searches add|list`
record what was searched with nothing found, so the next plan uses the updated map."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from driftline.cli.client import ApiClient
from driftline.cli.failures import CliError
from driftline.cli.missions import ApiKeyOpt, ApiUrlOpt, JsonOpt, MissionArg, client

console = Console()
notes = Console(stderr=True)

searches_app = typer.Typer(
    help="Searches made with nothing found: record them (the map is updated, cumulative "
    "POS grows) and list them.",
    no_args_is_help=True,
)

UNIT_HELP = (
    "A search unit as NAME:TYPE:SPEED_KN:HOURS[:SWEEP_WIDTH_KM], TYPE one of vessel, "
    "helicopter, fixed_wing; without a sweep width it comes from the IAMSAR table. "
    "Repeat for each unit, e.g. --unit 'RESCUE 1:vessel:12:3' --unit 'LIMA 2:fixed_wing:150:2'."
)
WAIT_FOR_S = 600.0


def parse_unit(
    text: str, *, visibility_nm: float, wind_kn: float, sea_m: float, fatigue: bool
) -> dict[str, Any]:
    """`NAME:TYPE:SPEED:HOURS[:SWEEP]` as the API's unit body."""
    parts = [p.strip() for p in text.split(":")]
    if len(parts) not in (4, 5) or not parts[0]:
        raise CliError(f"--unit {text!r}: expected NAME:TYPE:SPEED_KN:HOURS[:SWEEP_WIDTH_KM].")
    try:
        numbers = [float(p) for p in parts[2:]]
    except ValueError as exc:
        raise CliError(f"--unit {text!r}: speed, hours and sweep width are numbers.") from exc
    unit: dict[str, Any] = {
        "name": parts[0],
        "type": parts[1],
        "speed_kn": numbers[0],
        "time_on_scene_h": numbers[1],
        "visibility_nm": visibility_nm,
        "wind_kn": wind_kn,
        "sea_m": sea_m,
        "fatigue": fatigue,
    }
    if len(numbers) == 3:
        unit["sweep_width_km"] = numbers[2]
    return unit


def wait_for_plan(api: ApiClient, mission_id: str, plan_id: str) -> Any:
    """Poll the plan until it is completed or failed."""
    deadline = time.monotonic() + WAIT_FOR_S
    delay = 0.5
    while True:
        plan = api.request("GET", f"/v1/missions/{mission_id}/plans/{plan_id}").json()
        if plan["status"] in ("completed", "failed"):
            return plan
        if time.monotonic() > deadline:
            raise CliError(f"Plan {plan_id} is still {plan['status']} after {WAIT_FOR_S:.0f} s.")
        time.sleep(delay)
        delay = min(delay * 1.5, 3.0)


def show_plan(api: ApiClient, plan: dict[str, Any], out: Console) -> None:
    """The areas' figures, then the briefing text."""
    if plan["status"] != "completed":
        out.print(f"[red]plan {plan['status']}[/red]: {plan.get('failure') or ''}", highlight=False)
        return
    summary = plan["summary"]
    table = Table("unit", "pattern", "spacing km", "area km²", "POC", "coverage", "POD", "POS")
    for area in summary["areas"]:
        table.add_row(
            area["unit"],
            area["pattern"],
            f"{area['track_spacing_km']:.2f}",
            f"{area['area_km2']:.1f}",
            f"{area['poc']:.0%}",
            f"{area['coverage']:.2f}",
            f"{area['pod']:.0%}",
            f"{area['pos']:.0%}",
        )
    out.print(table)
    out.print(
        f"plan POS {summary['pos']:.0%} (optimal bound {summary['optimal_pos']:.0%}); "
        f"cumulative POS {summary['cumulative_pos_before']:.0%} -> "
        f"{summary['cumulative_pos_after']:.0%}"
    )
    briefing = api.request(
        "GET", f"/v1/missions/{plan['mission_id']}/plans/{plan['id']}/artifacts/briefing.txt"
    )
    out.print(briefing.text, markup=False, highlight=False)


def plan(
    mission_id: MissionArg,
    unit: Annotated[list[str], typer.Option("--unit", help=UNIT_HELP, show_default=False)],
    commence: Annotated[
        str,
        typer.Option(
            help="Search commence time, RFC 3339 (e.g. 2024-01-01T12:00:00Z).", show_default=False
        ),
    ],
    visibility: Annotated[float, typer.Option(help="Visibility, NM (sweep-width table).")] = 10.0,
    wind: Annotated[float, typer.Option(help="Wind, knots (weather correction).")] = 0.0,
    sea: Annotated[float, typer.Option(help="Significant wave height, m.")] = 0.0,
    fatigue: Annotated[
        bool, typer.Option("--fatigue", help="Crews tired: sweep width x 0.9.")
    ] = False,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for the plan; show the briefing.")
    ] = False,
    as_json: JsonOpt = False,
    api_url: ApiUrlOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Plan a search on a completed mission: one area per unit (no overlap), pattern,
    track spacing, waypoints, and the probability of success.

    Example: driftline plan $MISSION --commence 2024-01-01T12:00:00Z --unit 'R1:vessel:12:3' --wait
    """
    units = [
        parse_unit(u, visibility_nm=visibility, wind_kn=wind, sea_m=sea, fatigue=fatigue)
        for u in unit
    ]
    body = {"commence_time": commence, "units": units}
    with client(api_url, api_key) as api:
        accepted = api.request("POST", f"/v1/missions/{mission_id}/plans", json=body).json()
        if not wait:
            print(json.dumps(accepted)) if as_json else console.print(
                f"plan [bold]{accepted['id']}[/bold] requested"
            )
            return
        result = wait_for_plan(api, mission_id, str(accepted["id"]))
        if as_json:
            print(json.dumps(result))
        else:
            show_plan(api, result, console)
    raise typer.Exit(0 if result["status"] == "completed" else 1)


@searches_app.command("add")
def searches_add(
    mission_id: MissionArg,
    searched_at: Annotated[
        str,
        typer.Option("--searched-at", help="When it was searched (RFC 3339).", show_default=False),
    ],
    plan_id: Annotated[
        str | None, typer.Option("--plan", help="Searched as planned: the plan's id.")
    ] = None,
    unit: Annotated[str | None, typer.Option(help="The unit (with --plan: its area).")] = None,
    geojson: Annotated[
        Path | None,
        typer.Option(
            help="A GeoJSON geometry: areas searched (Polygon) or tracks flown (LineString)."
        ),
    ] = None,
    sweep_width: Annotated[float | None, typer.Option(help="Sweep width used, km.")] = None,
    track_spacing: Annotated[float | None, typer.Option(help="Track spacing flown, km.")] = None,
    pod: Annotated[float | None, typer.Option(help="Achieved POD over the areas (0-1).")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the updated map.")] = False,
    as_json: JsonOpt = False,
    api_url: ApiUrlOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Record a search that found nothing; the probability map is updated (Bayes).

    Example: driftline searches add $MISSION --searched-at 2024-01-01T14:00Z --plan $PLAN --unit R1
    """
    body: dict[str, Any] = {"searched_at": searched_at, "unit": unit, "plan_id": plan_id}
    if geojson is not None:
        try:
            body["geometry"] = json.loads(geojson.read_text())
        except (OSError, ValueError) as exc:
            raise CliError(f"Cannot read a GeoJSON geometry from {geojson}: {exc}.") from exc
    body.update(sweep_width_km=sweep_width, track_spacing_km=track_spacing, pod=pod)
    body = {k: v for k, v in body.items() if v is not None}
    with client(api_url, api_key) as api:
        search = api.request("POST", f"/v1/missions/{mission_id}/searches", json=body).json()
        update = wait_for_plan(api, mission_id, search["map_update_plan_id"]) if wait else None
    if as_json:
        print(json.dumps({"search": search, "map_update": update}))
        return
    console.print(f"search [bold]{search['id']}[/bold] recorded")
    if update is not None and update["status"] == "completed":
        console.print(
            f"cumulative POS now {update['summary']['cumulative_pos_before']:.0%} "
            f"after {update['summary']['searches_applied']} search(es)"
        )


@searches_app.command("list")
def searches_list(
    mission_id: MissionArg,
    as_json: JsonOpt = False,
    api_url: ApiUrlOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """The searches recorded for a mission, oldest first, and the cumulative POS.

    Example: driftline searches list 0b7f8a52-3c41-4d7e-9a55-6f1d2e3c4b5a
    """
    with client(api_url, api_key) as api:
        page = api.request("GET", f"/v1/missions/{mission_id}/searches").json()
    if as_json:
        print(json.dumps(page))
        return
    table = Table("searched at", "unit", "geometry", "POD", "spacing km")
    for s in page["items"]:
        table.add_row(
            s["searched_at"],
            s.get("unit") or "",
            s["geometry"]["type"],
            "" if s.get("pod") is None else f"{s['pod']:.0%}",
            "" if s.get("track_spacing_km") is None else f"{s['track_spacing_km']:.2f}",
        )
    console.print(table)
    cumulative = page.get("cumulative_pos")
    console.print(
        "cumulative POS: " + ("(map update pending)" if cumulative is None else f"{cumulative:.0%}")
    )
