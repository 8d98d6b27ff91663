"""Driftline's exception tree: the runner decides pause, retry, dead letter or failure from
the class alone, and third-party errors are mapped into it at the boundary that meets them.

* ``TransientError``: try again later. Its subclass ``DependencyUnavailable`` means a
  piece of infrastructure (broker, database, object store, forcing server) is down: the
  runner pauses and retries without spending the record's attempts, since the message
  is not at fault. Any other transient error is retried with backoff, then the record is
  dead-lettered and its mission held.
* ``PermanentError``: the mission itself is wrong or cannot be served (position on
  land, no forcing covers its time). The runner fails the mission at once, with
  ``reason`` (machine-readable code) and the message (a sentence for a coordinator).
* ``UnparseableRecordError``: the record cannot even be read; straight to the DLQ.
* The rest are raised to callers outside the pipeline (API, CLI, start-up).
"""

from __future__ import annotations


class DriftlineError(Exception):
    """Base of every error Driftline raises on purpose."""


# -- pipeline verdicts -------------------------------------------------------------------


class TransientError(DriftlineError):
    """Worth retrying: the cause is outside the mission and may pass."""


class DependencyUnavailable(TransientError):
    """A service Driftline depends on did not answer; no fault of the message."""


class BrokerUnavailable(DependencyUnavailable):
    """Kafka did not answer in time."""


class DatabaseUnavailable(DependencyUnavailable):
    """PostgreSQL did not answer (down, restarting, refusing connections)."""


class StorageUnavailable(DependencyUnavailable):
    """The artifact store did not answer."""


class ForcingUnavailable(DependencyUnavailable):
    """A forcing source could not be reached."""


class SimulationPoolBroken(TransientError):
    """A simulation process died; the pool is rebuilt and the run retried."""


class PermanentError(DriftlineError):
    """Not worth retrying: fails the mission with a reason code and a readable sentence."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class ForcingGap(PermanentError):
    """The forcing does not cover the mission's place or time."""

    def __init__(self, detail: str) -> None:
        super().__init__("forcing_gap", detail)


class InvalidMission(PermanentError):
    """The mission asks for something that cannot be simulated."""


class CallbackRefused(InvalidMission):
    """A callback URL that is not http(s) or reaches an address that is not globally
    routable (and not allow-listed): refused at POST (422) and again at delivery."""

    def __init__(self, detail: str) -> None:
        super().__init__("callback_url_refused", detail)


class CallbackUnresolvable(CallbackRefused):
    """The callback host does not resolve; at delivery time worth another try later."""


class UnparseableRecordError(DriftlineError):
    """A Kafka record whose headers or value do not form a known event."""


# -- callers outside the pipeline ------------------------------------------------------------


class ConfigurationError(DriftlineError):
    """Settings or a catalog file that cannot work; raised at start-up, never per mission."""


class InfraError(DriftlineError):
    """A local service (Kafka, PostgreSQL, MinIO) could not be fetched, built or started."""


class PortTaken(InfraError):
    """A port Driftline would listen on is held by a process it did not start: names the
    port, that process and the setting that moves it."""

    def __init__(self, port: int, what: str, holder: str, setting: str) -> None:
        super().__init__(
            f"port {port} ({what}) is already taken by {holder}, which this checkout did "
            f"not start. Stop that process, or move {what} to a free port with {setting}."
        )
        self.port = port
        self.holder = holder
        self.setting = setting


class ArtifactNotFound(DriftlineError):
    """No artifact under that key."""


class InvalidKey(DriftlineError):
    """An artifact key that could escape the mission's prefix or the store's root."""


class IdempotencyConflict(DriftlineError):
    """Same Idempotency-Key, but the first request with it is still in flight (409)."""


class IdempotencyMismatch(DriftlineError):
    """Same Idempotency-Key, other body (422)."""


class RequestRejected(DriftlineError):
    """A request refused before anything is stored (422): `problems` holds one
    `(field, message, type)` entry per offending field, in words a coordinator understands."""

    def __init__(self, problems: list[tuple[str, str, str]]) -> None:
        super().__init__("; ".join(f"{field}: {message}" for field, message, _ in problems))
        self.problems = problems


class InvalidSignature(DriftlineError):
    """A webhook whose signature, headers or timestamp do not verify."""
