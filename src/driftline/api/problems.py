"""RFC 9457 problem details: every error the API answers, and how OpenAPI documents it.

Every error is `application/problem+json` with `type`, `title`, `status` and `detail`;
a 422 adds `errors`, one entry per offending field (`field`, `message`, `type`). Plain
HTTP errors (401, 404, 405, 413, 415) use the type `about:blank`, whose title is the
status phrase; Driftline's own kinds use a `tag:` URI naming them (not dereferenceable,
RFC 9457 section 3.1.1), listed in `PROBLEM_KINDS`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from driftline.errors import RequestRejected, TransientError

PROBLEM_MEDIA_TYPE = "application/problem+json"
#: Seconds a client should wait before retrying after a 503.
UNAVAILABLE_RETRY_AFTER_S = 5


@dataclass(frozen=True)
class ProblemKind:
    """A problem type of Driftline's own: its URI and title."""

    slug: str
    status: int
    title: str

    @property
    def type(self) -> str:
        return f"tag:driftline,2026:problem:{self.slug}"


INVALID_REQUEST = ProblemKind("invalid-request", 422, "Your request is not valid")
IDEMPOTENCY_KEY_REUSED = ProblemKind(
    "idempotency-key-reused", 422, "Idempotency-Key reused with another request body"
)
IDEMPOTENCY_KEY_IN_USE = ProblemKind(
    "idempotency-key-in-use", 409, "A request with this Idempotency-Key is still in flight"
)
MISSION_NOT_COMPLETED = ProblemKind("mission-not-completed", 409, "The mission has no results yet")
BAD_HEADER = ProblemKind("bad-header", 400, "A request header is malformed")
BAD_CURSOR = ProblemKind("bad-cursor", 400, "The cursor was not handed out by this API")
RATE_LIMITED = ProblemKind("rate-limited", 429, "Too many requests for this API key")
TOO_MANY_STREAMS = ProblemKind(
    "too-many-streams", 429, "Too many open status streams for this API key"
)
RESULTS_EXPIRED = ProblemKind(
    "results-expired", 410, "The mission's results were removed after their retention"
)
UNAVAILABLE = ProblemKind("service-unavailable", 503, "A backing service is unavailable")
INTERNAL = ProblemKind("internal-error", 500, "Internal error")

PROBLEM_KINDS = (
    INVALID_REQUEST,
    IDEMPOTENCY_KEY_REUSED,
    IDEMPOTENCY_KEY_IN_USE,
    MISSION_NOT_COMPLETED,
    BAD_HEADER,
    BAD_CURSOR,
    RATE_LIMITED,
    TOO_MANY_STREAMS,
    RESULTS_EXPIRED,
    UNAVAILABLE,
    INTERNAL,
)


class FieldError(BaseModel):
    """One offending field of a refused request."""

    field: str = Field(description="Dotted path, e.g. `last_known_position.time`.")
    message: str = Field(description="What is wrong, in words.")
    type: str = Field(description="Machine-readable kind, e.g. `time_out_of_range`.")


class Problem(BaseModel):
    """An error, as RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(default="about:blank", description="URI identifying the problem type.")
    title: str = Field(description="Short summary of the problem type.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="This occurrence, in words.")


class ValidationProblem(Problem):
    """A refused request (422), with one entry per offending field."""

    errors: list[FieldError]


class ApiProblem(StarletteHTTPException):
    """Raised by route code to answer a problem; plain HTTPExceptions work too."""

    def __init__(
        self,
        kind: ProblemKind,
        detail: str,
        headers: Mapping[str, str] | None = None,
        errors: Sequence[FieldError] | None = None,
    ) -> None:
        super().__init__(kind.status, detail, dict(headers) if headers else None)
        self.kind = kind
        self.errors = list(errors) if errors is not None else None


def problem_response(
    status: int,
    detail: str,
    *,
    kind: ProblemKind | None = None,
    headers: Mapping[str, str] | None = None,
    errors: Sequence[FieldError] | None = None,
) -> JSONResponse:
    """The response for one problem (also an ASGI app, so middleware can send it)."""
    title = kind.title if kind is not None else _phrase(status)
    body: dict[str, Any] = {
        "type": kind.type if kind is not None else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = [e.model_dump() for e in errors]
    return JSONResponse(
        body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_MEDIA_TYPE
    )


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def invalid_request(errors: Sequence[FieldError]) -> JSONResponse:
    fields = ", ".join(dict.fromkeys(e.field or "body" for e in errors))
    noun = "field is" if len(errors) == 1 else "fields are"
    return problem_response(
        422,
        f"{len(errors)} {noun} not valid: {fields}",
        kind=INVALID_REQUEST,
        errors=errors,
    )


def _field_errors(exc: RequestValidationError) -> list[FieldError]:
    return [
        FieldError(
            field=".".join(str(p) for p in err["loc"] if p != "body"),
            message=str(err["msg"]).removeprefix("Value error, "),
            type=str(err["type"]),
        )
        for err in exc.errors()
    ]


def unavailable(detail: str) -> JSONResponse:
    """503: a dependency is down; nothing was accepted, retry shortly."""
    return problem_response(
        503,
        detail,
        kind=UNAVAILABLE,
        headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_S)},
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error, expected or not, as problem details."""

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return problem_response(
            exc.status_code,
            str(exc.detail),
            kind=getattr(exc, "kind", None),
            headers=exc.headers,
            errors=getattr(exc, "errors", None),
        )

    async def validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return invalid_request(_field_errors(exc))

    async def rejected(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestRejected)
        return invalid_request([FieldError(field=f, message=m, type=t) for f, m, t in exc.problems])

    async def transient(_: Request, exc: Exception) -> JSONResponse:
        # Never a bare 500 and never a 202: the request had no effect.
        return unavailable(
            f"a backing service is unavailable ({type(exc).__name__}); nothing was "
            "accepted, retry shortly"
        )

    async def internal(_: Request, __: Exception) -> JSONResponse:
        # The cause goes to the server's log, never to the client.
        return problem_response(500, "the request failed; it had no effect", kind=INTERNAL)

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(RequestRejected, rejected)
    app.add_exception_handler(TransientError, transient)
    app.add_exception_handler(Exception, internal)


# -- OpenAPI ------------------------------------------------------------------------------

_DESCRIPTIONS = {
    400: "Malformed header or cursor (e.g. an empty Idempotency-Key or Content-Length).",
    401: "Missing, unknown or revoked API key.",
    404: "No such mission (another tenant's mission answers the same).",
    409: "Conflict: the Idempotency-Key is still in flight, or the mission is not completed.",
    410: "The mission's results were removed after their retention (artifacts expired).",
    413: "Request body larger than the configured limit.",
    415: "Request body is not `application/json`.",
    422: "The request is not valid: one entry per offending field.",
    429: "Rate limit or stream limit of the API key reached; see `Retry-After`.",
    503: "A backing service (PostgreSQL) is unavailable; nothing was done. Retry later.",
}

_RETRY_AFTER = {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}
_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "`Bearer`.", "schema": {"type": "string"}}},
    429: {
        "Retry-After": _RETRY_AFTER,
        "RateLimit": {
            "description": "IETF RateLimit: remaining quota and seconds to its reset.",
            "schema": {"type": "string"},
        },
        "RateLimit-Policy": {
            "description": "IETF RateLimit-Policy: quota and window of the key's policy.",
            "schema": {"type": "string"},
        },
    },
    503: {"Retry-After": _RETRY_AFTER},
}


def accepted_responses(what: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` entry of a 202 whose `Location` header points at the new `what`."""
    location = {"description": f"The {what}'s URL.", "schema": {"type": "string"}}
    return {202: {"headers": {"Location": location}}}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries documenting each status as problem details."""
    documented: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        schema = "ValidationProblem" if status == 422 else "Problem"
        entry: dict[str, Any] = {
            "description": _DESCRIPTIONS[status],
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
        }
        if status in _HEADERS:
            entry["headers"] = _HEADERS[status]
        documented[status] = entry
    return documented


def problem_schemas() -> dict[str, Any]:
    """The component schemas `problem_responses` refers to."""
    schema = ValidationProblem.model_json_schema(ref_template="#/components/schemas/{model}")
    components: dict[str, Any] = dict(schema.pop("$defs", {}))
    components["ValidationProblem"] = schema
    components["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    return components
