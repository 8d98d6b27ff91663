"""The webhook dispatcher: sends due deliveries on the retry schedule, records each attempt.

Runs inside the notify worker (its `callbacks` dependency starts it) and alone as
`driftline webhooks run`; several may run at once. Each pass claims due rows with
`SELECT ... FOR UPDATE SKIP LOCKED` and leases them (moves `next_attempt_at` past the
attempt's timeout) in a short transaction, sends outside any transaction, then records
the attempt and schedules the next one. A dispatcher that dies mid-attempt loses
nothing: the lease runs out and another attempt goes, under the same webhook id.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from opentelemetry.trace import SpanKind

from driftline.contracts.missions import utcnow
from driftline.db.models import DeliveryState, WebhookAttempt, WebhookDelivery
from driftline.db.repositories import DueDelivery
from driftline.db.unit_of_work import Database
from driftline.errors import TransientError
from driftline.runtime import metrics
from driftline.runtime.lifecycle import sleep_or_stop
from driftline.settings import Settings
from driftline.telemetry import span_from
from driftline.webhooks import AttemptResult, AttemptVerdict, WebhookSender

log = structlog.get_logger("driftline.webhooks")

#: How far past an attempt's own timeout its lease lasts: room to record the attempt.
LEASE_MARGIN_S = 30.0


@dataclass(frozen=True)
class RetrySchedule:
    """The delay before each attempt of a round, as Standard Webhooks senders space them.

    `delays_s[0]` is the wait before the first attempt (0: at once); after the k-th
    failed attempt the next waits `delays_s[k]`, spread by +-`jitter` so deliveries that
    failed together (one receiver down) do not all return at the same second, and never
    less than the receiver's `Retry-After`, itself capped at `retry_after_cap_s`.
    """

    delays_s: tuple[float, ...]
    retry_after_cap_s: float
    jitter: float = 0.1
    rand: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def __post_init__(self) -> None:
        # No entry would mean no attempt at all: the callback silently never sent.
        if not self.delays_s:
            raise ValueError("the webhook retry schedule needs at least one attempt")
        # A negative delay is a typo; it would also sort the delivery before older ones.
        if any(d < 0 for d in self.delays_s):
            raise ValueError("webhook retry delays must not be negative")
        # A negative cap would let Retry-After shorten the schedule instead of bounding it.
        if self.retry_after_cap_s < 0:
            raise ValueError("the Retry-After cap must not be negative")
        # Jitter of 100 % or more could produce zero or negative delays.
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")

    @classmethod
    def from_settings(cls, settings: Settings) -> RetrySchedule:
        return cls(tuple(settings.webhook_retry_schedule_s), settings.webhook_retry_after_cap_s)

    @property
    def attempts(self) -> int:
        """Attempts in one round."""
        return len(self.delays_s)

    def next_delay(self, made: int, retry_after_s: float | None = None) -> float | None:
        """Seconds from now to the next attempt after `made` failed attempts of the round;
        None when the round is over."""
        if made >= len(self.delays_s):
            return None
        delay = self.delays_s[made] * (1 - self.jitter + 2 * self.jitter * self.rand())
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, self.retry_after_cap_s))
        return delay


def next_state(
    result: AttemptResult, made: int, schedule: RetrySchedule, now: datetime
) -> tuple[DeliveryState, datetime | None]:
    """Where a delivery goes after attempt number `made` of its round ended in `result`."""
    if result.verdict is AttemptVerdict.DELIVERED:
        return DeliveryState.DELIVERED, None
    if result.verdict is AttemptVerdict.FAILED:
        return DeliveryState.FAILED, None
    delay = schedule.next_delay(made, result.retry_after_s)
    if delay is None:
        return DeliveryState.FAILED, None
    return DeliveryState.PENDING, now + timedelta(seconds=delay)


@dataclass(frozen=True)
class Redelivery:
    """What `redeliver` did: the delivery as it now stands, and whether it tried at once."""

    delivery: WebhookDelivery
    attempted: bool


class WebhookDispatcher:
    """Attempts due webhook deliveries and schedules the next attempt of those that fail."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        *,
        sender: WebhookSender | None = None,
        schedule: RetrySchedule | None = None,
    ) -> None:
        self._settings = settings
        self._db = database
        self._sender = sender or WebhookSender(
            timeout_s=settings.webhook_timeout_s,
            allow_private=settings.webhook_allow_private,
            allowlist=settings.webhook_allowlist,
        )
        self._schedule = schedule or RetrySchedule.from_settings(settings)
        self._lease = timedelta(seconds=settings.webhook_timeout_s + LEASE_MARGIN_S)

    async def run(self, stop: asyncio.Event) -> None:
        """Dispatch until `stop` is set; waits out PostgreSQL outages."""
        settings = self._settings
        backoff = settings.retry_backoff_s
        log.info("webhooks.dispatcher_started")
        while not stop.is_set():
            try:
                attempted = await self.dispatch_due()
            except Exception as exc:
                # PostgreSQL down, or a bug in one pass: webhooks must not stop for good.
                if isinstance(exc, TransientError):
                    log.warning("webhooks.retry", error=str(exc), backoff_s=round(backoff, 2))
                else:
                    log.exception("webhooks.pass_failed", backoff_s=round(backoff, 2))
                await sleep_or_stop(stop, backoff)
                backoff = min(backoff * 2, settings.retry_backoff_max_s)
                continue
            backoff = settings.retry_backoff_s
            if attempted < settings.webhook_batch_size:
                await sleep_or_stop(stop, settings.webhook_poll_interval_s)

    async def dispatch_due(self) -> int:
        """One pass: attempt the due deliveries (a batch at most); returns how many."""
        now = utcnow()
        async with self._db.unit_of_work() as uow:
            await uow.webhooks.abandon_unannounced(now)
            claimed = await uow.webhooks.claim_due(
                now, now + self._lease, self._settings.webhook_batch_size
            )
        results = await asyncio.gather(
            *(self.attempt(due) for due in claimed), return_exceptions=True
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            # Unrecorded attempts are made again once their lease runs out.
            raise failures[0]
        return len(claimed)

    async def redeliver(self, webhook_id: str) -> Redelivery | None:
        """Start a new round of the schedule (same webhook id) and make its first attempt
        here and now; None for an unknown webhook id."""
        now = utcnow()
        async with self._db.unit_of_work() as uow:
            if await uow.webhooks.restart(webhook_id, now) is None:
                return None
            due = await uow.webhooks.claim(webhook_id, now + self._lease)
        if due is not None:
            await self.attempt(due)
        async with self._db.unit_of_work() as uow:
            delivery = await uow.webhooks.get(webhook_id)
        assert delivery is not None  # deleted only with its mission
        return Redelivery(delivery, attempted=due is not None)

    async def attempt(self, due: DueDelivery) -> AttemptVerdict:
        """One attempt of a claimed delivery, recorded with the delivery's next state."""
        delivery = due.delivery
        started = utcnow()
        if due.secret is None or delivery.payload is None:
            result = AttemptResult(AttemptVerdict.FAILED, 0.0, error="no signing secret or body")
        else:
            with span_from(
                "webhook attempt",
                due.traceparent,
                kind=SpanKind.CLIENT,
                **{"driftline.webhook_id": delivery.webhook_id, "attempt": delivery.attempts + 1},
            ):
                result = await self._sender.attempt(
                    delivery.url,
                    delivery.payload.encode(),
                    secret=due.secret,
                    webhook_id=delivery.webhook_id,
                )
        made = delivery.schedule_step + 1
        state, next_at = next_state(result, made, self._schedule, utcnow())
        attempt = WebhookAttempt(
            webhook_id=delivery.webhook_id,
            number=delivery.attempts + 1,
            at=started,
            duration_ms=round(result.duration_s * 1000),
            address=result.address,
            status_code=result.status,
            error=result.error,
            verdict=result.verdict.value,
        )
        async with self._db.unit_of_work() as uow:
            await uow.webhooks.record_attempt(due, attempt, state=state, next_attempt_at=next_at)
        metrics.WEBHOOK_ATTEMPTS.labels(result.verdict.value).inc()
        log.info(
            "webhook.attempt",
            webhook_id=delivery.webhook_id,
            mission=str(delivery.mission_id),
            attempt=attempt.number,
            verdict=result.verdict.value,
            status=result.status,
            error=result.error,
            state=state.value,
            next_attempt_at=next_at.isoformat() if next_at else None,
        )
        return result.verdict
