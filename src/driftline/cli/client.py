"""The CLI's HTTP client of the REST API (`/v1/missions` with a tenant's API key).

Every way a request can go wrong is mapped here, once, to a `CliError` in words: the API
not answering, and each problem-details answer (401, 404, 409, 413, 422 with its fields,
429 and 503 with their `Retry-After`). `ApiUnavailable` marks the failures worth trying
again (connection lost, 429, 502-504), which `follow` does while a stream reconnects.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from driftline.cli.failures import CliError

FINAL = {"completed", "failed", "cancelled"}
PROBLEM_MEDIA_TYPE = "application/problem+json"
KEY_HINT = (
    "Create a key with `driftline keys create --tenant NAME` and export DRIFTLINE_API_KEY "
    "(or pass --api-key)."
)


class ApiUnavailable(CliError):
    """The API could not be reached or asked to come back later; worth another try."""

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class StatusEvent:
    """One `status` event of a mission's stream: its id (for `Last-Event-ID`) and change."""

    id: str | None
    change: dict[str, Any]


def _problem(response: httpx.Response) -> dict[str, Any]:
    """The answer's problem details, or a stand-in built from its text."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        return body
    return {"detail": response.text.strip()[:200] or response.reason_phrase}


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


def problem_error(response: httpx.Response, *, not_found: str | None = None) -> CliError:
    """A refused request in words (RFC 9457 problem details when the API sent them)."""
    status = response.status_code
    problem = _problem(response)
    detail = str(problem.get("detail") or problem.get("title") or response.reason_phrase)
    retry = _retry_after(response)
    again = f" Try again in {retry:.0f} s." if retry is not None else ""
    if status == 401:
        return CliError(f"The API refused the API key (401: {detail}). {KEY_HINT}")
    if status == 404:
        return CliError(not_found or f"Not found (404): {detail}.")
    if status == 409:
        title = str(problem.get("title") or "Conflict")
        return CliError(f"{title} (409: {detail}).")
    if status == 413:
        return CliError(
            f"The request is too large for the API (413: {detail}); its limit is the "
            "API's DRIFTLINE_API_MAX_BODY_BYTES setting."
        )
    if status == 422:
        fields = [
            f"  {e.get('field') or 'body'}: {e.get('message', '')}"
            for e in problem.get("errors") or []
            if isinstance(e, dict)
        ]
        return CliError("\n".join([f"The API refused the request (422): {detail}.", *fields]))
    if status == 429:
        return ApiUnavailable(f"Too many requests (429): {detail}.{again}", retry_after_s=retry)
    if status in (502, 503, 504):
        return ApiUnavailable(
            f"The API is unavailable ({status}: {detail}).{again} "
            "`driftline infra status` shows the local services.",
            retry_after_s=retry,
        )
    return CliError(f"The API answered {status} {response.reason_phrase}: {detail}.")


class ApiClient:
    """Talks to the REST API with a tenant's API key; raises `CliError`, never httpx's."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not api_key:
            raise CliError(f"An API key is needed. {KEY_HINT}")
        self.base_url = base_url.rstrip("/")
        self._timeout_s = timeout_s
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout_s,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _unreachable(self, exc: httpx.HTTPError) -> CliError:
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return ApiUnavailable(
                f"The API at {self.base_url} does not answer ({exc or type(exc).__name__}). "
                "Start it with `driftline up` (or `driftline api`), or point --api-url "
                "(DRIFTLINE_PUBLIC_BASE_URL) at a running one."
            )
        if isinstance(exc, httpx.TimeoutException):
            return ApiUnavailable(
                f"The API at {self.base_url} did not answer within {self._timeout_s:.0f} s."
            )
        if isinstance(exc, httpx.TransportError):
            return ApiUnavailable(f"The connection to the API at {self.base_url} broke: {exc}.")
        return CliError(f"{self.base_url} cannot be used as the API's address: {exc}.")

    def request(
        self, method: str, path: str, *, not_found: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        if response.is_error:
            raise problem_error(response, not_found=not_found)
        return response

    @staticmethod
    def _missing(mission_id: str) -> str:
        return (
            f"No mission {mission_id} for this API key's tenant (404); "
            "`driftline missions list` shows the missions."
        )

    # -- missions ------------------------------------------------------------------------

    def submit(self, body: Any, *, idempotency_key: str | None = None) -> Any:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self.request("POST", "/v1/missions", json=body, headers=headers).json()

    def mission(self, mission_id: str) -> Any:
        return self.request(
            "GET", f"/v1/missions/{mission_id}", not_found=self._missing(mission_id)
        ).json()

    def results(self, mission_id: str) -> Any:
        return self.request(
            "GET", f"/v1/missions/{mission_id}/results", not_found=self._missing(mission_id)
        ).json()

    def cancel(self, mission_id: str) -> Any:
        return self.request(
            "DELETE", f"/v1/missions/{mission_id}", not_found=self._missing(mission_id)
        ).json()

    def artifact(self, mission_id: str, name: str) -> bytes:
        return self.request(
            "GET",
            f"/v1/missions/{mission_id}/artifacts/{name}",
            not_found=f"Mission {mission_id} has no artifact {name!r} (404).",
        ).content

    def artifact_chunks(self, mission_id: str, name: str) -> Iterator[bytes]:
        """The artifact's bytes as they arrive."""
        path = f"/v1/missions/{mission_id}/artifacts/{name}"
        try:
            with self._http.stream("GET", path) as response:
                if response.is_error:
                    response.read()
                    raise problem_error(
                        response, not_found=f"Mission {mission_id} has no artifact {name!r}."
                    )
                yield from response.iter_bytes()
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc

    def status_events(self, mission_id: str, *, after: str | None = None) -> Iterator[StatusEvent]:
        """The mission's status changes after event `after` as they happen (SSE), until
        the server ends the stream; a dropped connection raises `ApiUnavailable`."""
        headers = {"Last-Event-ID": after} if after else {}
        path = f"/v1/missions/{mission_id}/events"
        # No read timeout: a quiet stream is alive as long as keep-alive comments come.
        timeout = httpx.Timeout(self._timeout_s, read=None)
        try:
            with self._http.stream("GET", path, headers=headers, timeout=timeout) as response:
                if response.is_error:
                    response.read()
                    raise problem_error(response, not_found=self._missing(mission_id))
                yield from _parse_sse(response.iter_lines())
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc


def _parse_sse(lines: Iterator[str]) -> Iterator[StatusEvent]:
    event_id: str | None = None
    data: list[str] = []
    for line in lines:
        if line.startswith("id:"):
            event_id = line[3:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line and data:
            yield StatusEvent(event_id, json.loads("\n".join(data)))
            data = []
