"""A coordinator's commands over the REST API: submit, watch, cancel, download.

They use the API with a tenant's key (DRIFTLINE_API_KEY), as any other client would;
`missions list|show` (cli/main.py) read PostgreSQL instead, for operators. `follow` keeps
a mission's status stream open across drops, resuming with `Last-Event-ID`, and is what
`submit --wait` and `missions watch` show.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from driftline.cli.client import FINAL, ApiClient, ApiUnavailable
from driftline.cli.failures import CliError
from driftline.settings import load_settings

console = Console()
#: Progress and notes go to stderr, so stdout stays the command's answer (`--json`).
notes = Console(stderr=True)

ApiUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--api-url",
        help="The API's base URL. Default: DRIFTLINE_PUBLIC_BASE_URL.",
        show_default=False,
    ),
]
ApiKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="DRIFTLINE_API_KEY",
        help="Bearer key of a tenant (`driftline keys create`).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts, nothing else.")]
MissionArg = Annotated[str, typer.Argument(help="The mission's id.", show_default=False)]
#: How long a dropped status stream is retried before `follow` gives up.
RECONNECT_FOR_S = 300.0


def client(api_url: str | None, api_key: str | None) -> ApiClient:
    return ApiClient(api_url or load_settings().public_base_url, api_key)


def read_mission_file(path: Path) -> Any:
    """The JSON body in `path`, or a CliError saying what is wrong with the file."""
    try:
        text = path.read_text()
    except FileNotFoundError as exc:
        raise CliError(f"No mission file {path} (examples/mission.json is one).") from exc
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise CliError(f"Cannot read the mission file {path}: {exc}.") from exc
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}). "
            "docs/api.md describes the mission body; examples/mission.json is one."
        ) from exc
    if not isinstance(body, dict):
        raise CliError(f"{path} holds JSON but not an object; docs/api.md describes the body.")
    return body


# -- following a mission -------------------------------------------------------------------


def follow(
    api: ApiClient,
    mission_id: str,
    on_change: Callable[[dict[str, Any]], None],
    *,
    reconnect_for_s: float = RECONNECT_FOR_S,
) -> dict[str, Any]:
    """Every status change of the mission until a final one, which is returned.

    A dropped stream (API restarting, network, idle timeout) is reopened with the last
    event id, so no change is shown twice or missed; after `reconnect_for_s` without
    contact it gives up. A stream that never delivered an event fails at once.
    """
    last_id: str | None = None
    contact = time.monotonic()
    delay = 0.5
    while True:
        try:
            for event in api.status_events(mission_id, after=last_id):
                last_id = event.id or last_id
                contact, delay = time.monotonic(), 0.5
                on_change(event.change)
                if event.change.get("status") in FINAL:
                    return event.change
            contact, wait, why = time.monotonic(), 0.2, "the stream ended"
        except ApiUnavailable as exc:
            if last_id is None:  # never reached it: say so now rather than retry
                raise
            if time.monotonic() - contact > reconnect_for_s:
                raise CliError(
                    f"Lost mission {mission_id}'s status stream for {reconnect_for_s:.0f} s; "
                    f"last error: {exc.message}"
                ) from exc
            wait, why = exc.retry_after_s or delay, exc.message.split(". ")[0]
            delay = min(delay * 2, 5.0)
        notes.print(
            f"[dim]{why}; reconnecting (after event {last_id or '-'})[/dim]", highlight=False
        )
        time.sleep(wait)


def _change_line(change: dict[str, Any]) -> str:
    at = str(change.get("at", ""))[11:19]
    detail = f"  {change['detail']}" if change.get("detail") else ""
    progress = float(change.get("progress") or 0.0)
    return f"{at}  {change['status']:<14} {change.get('stage', ''):<14} {progress:4.0%}{detail}"


def follow_and_report(api: ApiClient, mission_id: str, out: Console) -> str:
    """Show each status change and a progress bar, then the results or the failure;
    returns the final status."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=out,
    ) as progress:
        task = progress.add_task("accepted", total=1.0)

        def show(change: dict[str, Any]) -> None:
            out.print(_change_line(change), markup=False, highlight=False)
            label = f"{change['status']} ({change.get('stage', '')})"
            progress.update(task, completed=float(change.get("progress") or 0), description=label)

        final = follow(api, mission_id, show)
    status = str(final["status"])
    if status == "completed":
        print_results(api.results(mission_id), out)
    else:
        mission = api.mission(mission_id)
        failure = mission.get("failure") or {}
        out.print(
            f"[red]{status}[/red] at {failure.get('stage', mission.get('stage'))}: "
            f"{failure.get('reason', '')} - {failure.get('detail', '')}",
            highlight=False,
        )
    return status


def print_results(results: dict[str, Any], out: Console) -> None:
    """The summary, a table of the artifacts, and their links whole below it (a link in
    a table cell would be cut or folded at the terminal's width)."""
    summary = results["summary"]
    centroid = summary["centroid"]
    out.print(
        f"[green]completed[/green]: {summary['particles_total']} particles, "
        f"{summary['particles_active']} afloat, {summary['particles_stranded']} stranded"
    )
    out.print(f"datum (centroid of final positions): {centroid['lat']:.4f}N {centroid['lon']:.4f}E")
    areas = ", ".join(f"{k} %: {v:.1f} km²" for k, v in sorted(summary["area_km2"].items()))
    out.print(f"containment areas: {areas}")
    table = Table("artifact", "type", "bytes")
    for artifact in results["artifacts"]:
        table.add_row(artifact["name"], artifact["media_type"], str(artifact["bytes"]))
    out.print(table)
    out.print("links (GET with the API key; `driftline missions download` fetches them all):")
    for artifact in results["artifacts"]:
        out.print(artifact["href"], soft_wrap=True, markup=False, highlight=False)


# -- commands ------------------------------------------------------------------------------


def submit(
    file: Annotated[
        Path,
        typer.Argument(
            help="Mission request JSON (docs/api.md; examples/mission.json).", show_default=False
        ),
    ],
    wait: Annotated[bool, typer.Option("--wait", help="Follow progress until final.")] = False,
    as_json: JsonOpt = False,
    api_url: ApiUrlOpt = None,
    api_key: ApiKeyOpt = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(help="Idempotency-Key header: a retry with it never makes a second mission."),
    ] = None,
) -> None:
    """Submit a mission over HTTP; with --wait, show live progress and the results.

    Exit status with --wait: 0 when the mission completed, 1 otherwise.

    Example: driftline submit examples/mission.json --wait
    """
    body = read_mission_file(file)
    with client(api_url, api_key) as api:
        accepted = api.submit(body, idempotency_key=idempotency_key)
        mission_id = str(accepted["id"])
        if as_json:
            final = follow(api, mission_id, lambda _: None) if wait else None
            if final is None:
                print(json.dumps(accepted))
                return
            mission = api.mission(mission_id)
            if final["status"] == "completed":
                mission["results"] = api.results(mission_id)
            print(json.dumps(mission))
            raise typer.Exit(0 if final["status"] == "completed" else 1)
        console.print(f"accepted: mission [bold]{mission_id}[/bold]")
        if wait:
            status = follow_and_report(api, mission_id, console)
            raise typer.Exit(0 if status == "completed" else 1)


def watch(
    mission_id: MissionArg,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON status change per line (NDJSON).")
    ] = False,
    api_url: ApiUrlOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Follow a mission live until it is final, reconnecting when the stream drops.

    Exit status: 0 when the mission completed, 1 otherwise.

    Example: driftline missions watch 0b7f8a52-3c41-4d7e-9a55-6f1d2e3c4b5a
    """
    with client(api_url, api_key) as api:
        if as_json:
            final = follow(api, mission_id, lambda change: print(json.dumps(change), flush=True))
            status = str(final["status"])
        else:
            status = follow_and_report(api, mission_id, console)
    raise typer.Exit(0 if status == "completed" else 1)


def cancel(
    mission_id: MissionArg,
    as_json: JsonOpt = False,
    api_url: ApiUrlOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Cancel a mission; later stages skip it. A final mission is left as it is.

    Example: driftline missions cancel 0b7f8a52-3c41-4d7e-9a55-6f1d2e3c4b5a
    """
    with client(api_url, api_key) as api:
        mission = api.cancel(mission_id)
    if as_json:
        print(json.dumps(mission))
    elif mission["status"] == "cancelled":
        console.print(f"mission {mission_id} cancelled")
    else:
        console.print(f"mission {mission_id} is already {mission['status']}; left as it was")


def _target(out: Path, name: str) -> Path:
    """Where artifact `name` goes under `out`; a name that would leave `out` is refused."""
    root = out.resolve()
    target = (root / name).resolve()
    if root not in target.parents:
        raise CliError(f"The API listed an artifact named {name!r}, which would leave {out}.")
    return target


def download(
    mission_id: MissionArg,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for the artifacts. Default: ./<mission id>.", show_default=False),
    ] = None,
    api_url: ApiUrlOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Download every artifact of a completed mission, checking each one's SHA-256.

    Example: driftline missions download 0b7f8a52-3c41-4d7e-9a55-6f1d2e3c4b5a --out results
    """
    folder = out or Path(mission_id)
    with client(api_url, api_key) as api:
        artifacts = api.results(mission_id)["artifacts"]
        total = sum(int(a["bytes"]) for a in artifacts)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=notes,
        ) as progress:
            task = progress.add_task("downloading", total=total)
            for artifact in artifacts:
                target = _target(folder, artifact["name"])
                target.parent.mkdir(parents=True, exist_ok=True)
                progress.update(task, description=artifact["name"])
                digest = hashlib.sha256()
                with target.open("wb") as sink:
                    for chunk in api.artifact_chunks(mission_id, artifact["name"]):
                        sink.write(chunk)
                        digest.update(chunk)
                        progress.advance(task, len(chunk))
                if digest.hexdigest() != artifact["sha256"]:
                    raise CliError(
                        f"{artifact['name']} arrived corrupted (SHA-256 differs from the "
                        "listing); run the download again."
                    )
    console.print(f"{len(artifacts)} artifacts ({total} bytes) in {folder}/")
