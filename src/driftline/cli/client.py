"""A small HTTP client of the REST API, and the live progress display of `submit --wait`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

FINAL = {"completed", "failed", "cancelled"}


class MissionClient:
    """Talks to `/v1/missions` with a tenant's API key."""

    def __init__(self, base_url: str, api_key: str, *, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._timeout = timeout_s

    def submit(self, body: dict[str, Any], *, idempotency_key: str | None = None) -> Any:
        headers = dict(self._headers)
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        response = httpx.post(
            f"{self.base_url}/v1/missions", json=body, headers=headers, timeout=self._timeout
        )
        if response.status_code == 422:
            raise SystemExit(f"rejected: {json.dumps(response.json(), indent=2)}")
        response.raise_for_status()
        return response.json()

    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.base_url}{path}", headers=self._headers, timeout=self._timeout)
        response.raise_for_status()
        return response.json()

    def mission(self, mission_id: str) -> Any:
        return self.get(f"/v1/missions/{mission_id}")

    def results(self, mission_id: str) -> Any:
        return self.get(f"/v1/missions/{mission_id}/results")

    def artifact(self, mission_id: str, name: str) -> bytes:
        response = httpx.get(
            f"{self.base_url}/v1/missions/{mission_id}/artifacts/{name}",
            headers=self._headers,
            timeout=self._timeout,
        )
        response.raise_for_status()
        return response.content

    def status_events(self, mission_id: str) -> Iterator[dict[str, Any]]:
        """The mission's status changes as they happen (Server-Sent Events)."""
        url = f"{self.base_url}/v1/missions/{mission_id}/events"
        with httpx.stream("GET", url, headers=self._headers, timeout=None) as response:
            response.raise_for_status()
            data: list[str] = []
            for line in response.iter_lines():
                if line.startswith("data:"):
                    data.append(line[5:].strip())
                elif not line and data:
                    yield json.loads("\n".join(data))
                    data = []


def follow_and_report(client: MissionClient, mission_id: str, console: Console) -> str:
    """Show a progress bar per status change, then the summary or the failure; returns status."""
    status = "accepted"
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("accepted", total=1.0)
        for change in client.status_events(mission_id):
            status = change["status"]
            label = f"{status} ({change['stage']})"
            progress.update(task, completed=change["progress"], description=label)
            if status in FINAL:
                break
    if status == "completed":
        print_results(client.results(mission_id), console)
    else:
        mission = client.mission(mission_id)
        failure = mission.get("failure") or {}
        console.print(
            f"[red]{status}[/red] at {failure.get('stage', mission['stage'])}: "
            f"{failure.get('reason', '')} — {failure.get('detail', '')}"
        )
    return status


def print_results(results: dict[str, Any], console: Console) -> None:
    summary = results["summary"]
    centroid = summary["centroid"]
    console.print(
        f"[green]completed[/green]: {summary['particles_total']} particles, "
        f"{summary['particles_active']} afloat, {summary['particles_stranded']} stranded"
    )
    console.print(
        f"datum (centroid of final positions): {centroid['lat']:.4f}N {centroid['lon']:.4f}E"
    )
    areas = ", ".join(f"{k} %: {v:.1f} km²" for k, v in sorted(summary["area_km2"].items()))
    console.print(f"containment areas: {areas}")
    table = Table("artifact", "type", "bytes", "where")
    for artifact in results["artifacts"]:
        table.add_row(
            artifact["name"], artifact["media_type"], str(artifact["bytes"]), artifact["href"]
        )
    console.print(table)
