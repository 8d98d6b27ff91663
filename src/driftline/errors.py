"""Driftline's exception tree: the runner decides retry, dead letter or failure from the class.

* ``TransientError``: try again later (broker, database, object store or forcing
  server unavailable). The runner retries with backoff, then dead-letters.
* ``PermanentError``: the mission itself is wrong or cannot be served (position on
  land, no forcing covers its time). The runner fails the mission at once, with
  ``reason`` (machine-readable code) and the message (a sentence for a coordinator).
* ``UnparseableRecordError``: the record cannot even be read; straight to the DLQ.
"""

from __future__ import annotations


class DriftlineError(Exception):
    """Base of every error Driftline raises on purpose."""


class TransientError(DriftlineError):
    """Worth retrying: the cause is outside the mission and may pass."""


class PermanentError(DriftlineError):
    """Not worth retrying: fails the mission with a reason code and a readable sentence."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class UnparseableRecordError(DriftlineError):
    """A Kafka record whose headers or value do not form a known event."""


class ConfigurationError(DriftlineError):
    """Settings or a catalog file that cannot work; raised at start-up, never per mission."""


class InfraError(DriftlineError):
    """A local service (Kafka, PostgreSQL, MinIO) could not be fetched, built or started."""


class StorageUnavailable(TransientError):
    """The artifact store did not answer."""


class ArtifactNotFound(DriftlineError):
    """No artifact under that key."""


class ForcingUnavailable(TransientError):
    """A forcing source could not be reached."""


class ForcingGap(PermanentError):
    """The forcing does not cover the mission's place or time."""

    def __init__(self, detail: str) -> None:
        super().__init__("forcing_gap", detail)


class InvalidMission(PermanentError):
    """The mission asks for something that cannot be simulated."""
