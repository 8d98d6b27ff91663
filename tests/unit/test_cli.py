"""The command line's own logic, without services: help texts, how failures are worded,
how a dropped status stream is resumed, how `up` shows a log line."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import typer.main
from typer.testing import CliRunner

from driftline.cli.client import ApiUnavailable, StatusEvent, problem_error
from driftline.cli.failures import CliError, report
from driftline.cli.main import app
from driftline.cli.missions import follow
from driftline.cli.up import readable
from driftline.errors import DatabaseUnavailable, PortTaken


def leaf_commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    subcommands = getattr(command, "commands", None)  # a group (typer vendors click)
    if subcommands:
        for name, sub in subcommands.items():
            yield from leaf_commands(sub, (*path, name))
    else:
        yield path


COMMANDS = list(leaf_commands(typer.main.get_command(app)))


def test_the_commands_a_newcomer_needs_exist() -> None:
    for path in [("up",), ("ready",), ("submit",), ("docs", "write")]:
        assert path in COMMANDS
    for verb in ("list", "show", "watch", "cancel", "download"):
        assert ("missions", verb) in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_has_an_example_and_links_only_into_the_repository(
    path: tuple[str, ...],
) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Example: driftline" in result.output or "Example: eval" in result.output
    assert "DESIGN.md" not in result.output and "../" not in result.output


def answer(status: int, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.Response(
        status,
        json=body,
        headers={"content-type": "application/problem+json", **headers},
        request=httpx.Request("POST", "http://127.0.0.1:8000/v1/missions"),
    )


def test_problem_details_become_sentences() -> None:
    unauthorized = problem_error(answer(401, {"status": 401, "detail": "unknown API key"}))
    assert "refused the API key (401: unknown API key)" in unauthorized.message
    assert "driftline keys create" in unauthorized.message

    invalid = problem_error(
        answer(
            422,
            {
                "detail": "2 fields are not valid",
                "errors": [
                    {"field": "particles", "message": "too few", "type": "x"},
                    {"field": "last_known_position.lat", "message": "above 90", "type": "y"},
                ],
            },
        )
    )
    assert invalid.message.splitlines() == [
        "The API refused the request (422): 2 fields are not valid.",
        "  particles: too few",
        "  last_known_position.lat: above 90",
    ]

    limited = problem_error(answer(429, {"detail": "slow down"}, **{"Retry-After": "7"}))
    assert isinstance(limited, ApiUnavailable) and limited.retry_after_s == 7
    assert "Try again in 7 s" in limited.message

    down = problem_error(answer(503, {"detail": "database unavailable"}))
    assert isinstance(down, ApiUnavailable) and "unavailable (503" in down.message

    missing = problem_error(answer(404, {"detail": "no such mission"}), not_found="No mission X.")
    assert missing.message == "No mission X." and not isinstance(missing, ApiUnavailable)

    not_json = httpx.Response(
        500, text="<html>oops</html>", request=httpx.Request("GET", "http://127.0.0.1")
    )
    assert "500 Internal Server Error: <html>oops</html>" in problem_error(not_json).message


def test_failures_are_reported_in_words_and_tracebacks_only_with_debug() -> None:
    out = io.StringIO()
    assert report(CliError("The API at X does not answer."), debug=False, stream=out) == 1
    assert out.getvalue() == "error: The API at X does not answer.\n"

    out = io.StringIO()
    taken = PortTaken(9092, "Kafka", "pid 7 (java)", "DRIFTLINE_KAFKA_PORT")
    report(taken, debug=False, stream=out)
    assert "port 9092 (Kafka) is already taken by pid 7 (java)" in out.getvalue()
    assert "DRIFTLINE_KAFKA_PORT" in out.getvalue()

    out = io.StringIO()
    report(DatabaseUnavailable("refused"), debug=False, stream=out)
    assert "PostgreSQL does not answer at" in out.getvalue() and "infra up" in out.getvalue()

    out = io.StringIO()
    report(
        FileNotFoundError(2, "No such file or directory", "catalog.json"), debug=False, stream=out
    )
    assert out.getvalue() == "error: cannot use catalog.json: No such file or directory\n"

    out = io.StringIO()
    assert report(ZeroDivisionError("x"), debug=False, stream=out) == 1
    assert "bug in Driftline" in out.getvalue() and "Traceback" not in out.getvalue()

    out = io.StringIO()
    try:
        raise CliError("worded")
    except CliError as exc:
        report(exc, debug=True, stream=out)
    assert "Traceback" in out.getvalue() and out.getvalue().endswith("error: worded\n")


class DroppingStream:
    """A status stream that drops once after the first change, then resumes."""

    def __init__(self) -> None:
        self.asked_after: list[str | None] = []

    def status_events(self, mission_id: str, *, after: str | None = None) -> Iterator[StatusEvent]:
        self.asked_after.append(after)
        if after is None:
            yield StatusEvent("1", {"status": "validated", "stage": "validate"})
            raise ApiUnavailable("The connection to the API broke.")
        assert after == "1"
        yield StatusEvent("2", {"status": "simulated", "stage": "simulate"})
        yield StatusEvent("3", {"status": "completed", "stage": "notify"})


def test_follow_resumes_after_the_last_event_seen() -> None:
    stream = DroppingStream()
    seen: list[str] = []
    final = follow(stream, "m", lambda change: seen.append(change["status"]))  # type: ignore[arg-type]
    assert final["status"] == "completed"
    assert seen == ["validated", "simulated", "completed"]
    assert stream.asked_after == [None, "1"]


def test_follow_fails_at_once_when_the_api_never_answered() -> None:
    class Down:
        def status_events(self, mission_id: str, *, after: str | None = None) -> Iterator[Any]:
            raise ApiUnavailable("The API at X does not answer.")
            yield  # a generator, like the real one

    with pytest.raises(ApiUnavailable):
        follow(Down(), "m", lambda _: None)  # type: ignore[arg-type]


def test_up_shows_json_log_lines_readably() -> None:
    line = json.dumps(
        {
            "event": "relay.published",
            "level": "info",
            "timestamp": "2024-01-01T00:00:00Z",
            "count": 3,
        }
    )
    assert readable(line) == "INFO    relay.published count=3"
    assert readable("plain text") == "plain text"
