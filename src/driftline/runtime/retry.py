"""What to do after a stage raised: the verdict from the error's class, and the backoff.

Small policy objects (as faststream-outbox's `ExponentialRetry`), validated when built,
so the runner's loop only asks "how long?" and "give up yet?".
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum

from driftline.errors import DependencyUnavailable, PermanentError, UnparseableRecordError
from driftline.settings import Settings


class Verdict(Enum):
    """How the runner treats a failed attempt."""

    FAIL = "fail"  # the mission is at fault: fail it at once, with the reason
    OUTAGE = "outage"  # infrastructure is down: wait, without spending an attempt
    RETRY = "retry"  # maybe transient: back off, spend an attempt, then dead-letter
    DEAD_LETTER = "dead_letter"  # cannot even be read: straight to the DLQ


#: Errors a retry cannot fix: the same data gives the same error (a date out of range, a
#: value a library refuses). Anything else unexpected may be a bug: retried, then held.
DETERMINISTIC = (ArithmeticError, ValueError)


def classify(exc: BaseException) -> Verdict:
    """The verdict for `exc`, from its class alone."""
    if isinstance(exc, UnparseableRecordError):
        return Verdict.DEAD_LETTER
    if isinstance(exc, (PermanentError, *DETERMINISTIC)):
        return Verdict.FAIL
    if isinstance(exc, DependencyUnavailable):
        return Verdict.OUTAGE
    return Verdict.RETRY


def as_permanent(exc: BaseException) -> PermanentError:
    """A deterministic error as the mission's failure, in words."""
    if isinstance(exc, PermanentError):
        return exc
    detail = f"the mission's data cannot be processed ({type(exc).__name__}: {exc})"
    return PermanentError("invalid_data", detail[:1000])


@dataclass(frozen=True)
class ExponentialRetry:
    """`base_s * 2**(attempt-1)`, capped at `max_s`, with +-`jitter` spread."""

    base_s: float
    max_s: float
    max_attempts: int
    jitter: float = 0.2

    def __post_init__(self) -> None:
        # A zero base would retry in a tight loop and hammer whatever is failing.
        if self.base_s <= 0:
            raise ValueError("retry base delay must be positive")
        # A cap below the base would make the first delay the longest.
        if self.max_s < self.base_s:
            raise ValueError("retry cap must be at least the base delay")
        # At least one attempt, or nothing would ever run.
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        # Jitter of 100 % or more could produce zero or negative delays.
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")

    @classmethod
    def from_settings(cls, settings: Settings) -> ExponentialRetry:
        return cls(settings.retry_backoff_s, settings.retry_backoff_max_s, settings.max_attempts)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        raw = min(self.base_s * 2 ** (max(attempt, 1) - 1), self.max_s)
        return raw * (1 - self.jitter + 2 * self.jitter * random.random())

    def exhausted(self, attempt: int) -> bool:
        """Whether attempt number `attempt` was the last one allowed."""
        return attempt >= self.max_attempts


@dataclass(frozen=True)
class OutageBudget:
    """How long one record may wait out an outage before it is dead-lettered anyway."""

    seconds: float
    poll_max_s: float = 2.0  # the backoff while waiting is capped: resume soon after recovery

    def __post_init__(self) -> None:
        # Zero would dead-letter on the first blip: the very thing this budget prevents.
        if self.seconds <= 0:
            raise ValueError("outage budget must be positive")
        if self.poll_max_s <= 0:
            raise ValueError("outage poll interval must be positive")

    def spent(self, waited_s: float) -> bool:
        return waited_s >= self.seconds

    def delay(self, retry: ExponentialRetry, outages: int) -> float:
        """The pause before the next try while waiting out an outage."""
        return min(retry.delay(outages), self.poll_max_s)
