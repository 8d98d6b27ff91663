"""The webhook retry schedule and the state a delivery moves to after an attempt."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from driftline.db.models import DeliveryState
from driftline.runtime.webhook_dispatcher import RetrySchedule, next_state
from driftline.settings import Settings
from driftline.webhooks import AttemptResult, AttemptVerdict

STANDARD = (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0)
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def schedule(rand: float = 0.5, **kw: float) -> RetrySchedule:
    return RetrySchedule(STANDARD, retry_after_cap_s=kw.pop("cap", 3600.0), rand=lambda: rand)


def test_defaults_are_the_standard_webhooks_schedule() -> None:
    built = RetrySchedule.from_settings(Settings())
    assert built.delays_s == STANDARD
    assert built.attempts == 7
    assert sum(STANDARD) / 3600 == pytest.approx(17.5, abs=0.1), "spans hours"


def test_each_failed_attempt_waits_the_next_delay_until_the_round_ends() -> None:
    centred = schedule()  # rand 0.5: no spread
    assert [centred.next_delay(made) for made in range(1, 7)] == list(STANDARD[1:])
    assert centred.next_delay(7) is None
    assert centred.next_delay(8) is None


def test_jitter_spreads_within_ten_percent() -> None:
    assert schedule(rand=0.0).next_delay(2) == pytest.approx(270.0)
    assert schedule(rand=0.999999).next_delay(2) == pytest.approx(330.0, rel=1e-5)


def test_retry_after_lengthens_within_the_cap_and_never_shortens() -> None:
    centred = schedule(cap=3600.0)
    assert centred.next_delay(1, retry_after_s=60.0) == 60.0  # 5 s scheduled, asked for 60
    assert centred.next_delay(1, retry_after_s=86400.0) == 3600.0  # capped
    assert centred.next_delay(3, retry_after_s=1.0) == 1800.0  # the schedule is a floor
    assert centred.next_delay(7, retry_after_s=1.0) is None  # does not extend the round


@pytest.mark.parametrize(
    ("delays", "cap", "jitter"),
    [((), 10.0, 0.1), ((0.0, -1.0), 10.0, 0.1), ((0.0,), -1.0, 0.1), ((0.0,), 10.0, 1.0)],
)
def test_schedule_refuses_nonsense(delays: tuple[float, ...], cap: float, jitter: float) -> None:
    with pytest.raises(ValueError):
        RetrySchedule(delays, retry_after_cap_s=cap, jitter=jitter)


def result(verdict: AttemptVerdict, **kw: float) -> AttemptResult:
    return AttemptResult(verdict, 0.1, retry_after_s=kw.get("retry_after_s"))


def test_next_state_after_an_attempt() -> None:
    s = schedule()
    assert next_state(result(AttemptVerdict.DELIVERED), 1, s, NOW) == (
        DeliveryState.DELIVERED,
        None,
    )
    assert next_state(result(AttemptVerdict.FAILED), 1, s, NOW) == (DeliveryState.FAILED, None)
    assert next_state(result(AttemptVerdict.RETRY), 1, s, NOW) == (
        DeliveryState.PENDING,
        NOW + timedelta(seconds=5),
    )
    assert next_state(result(AttemptVerdict.RETRY, retry_after_s=120), 2, s, NOW) == (
        DeliveryState.PENDING,
        NOW + timedelta(seconds=300),
    )
    assert next_state(result(AttemptVerdict.RETRY), 7, s, NOW) == (DeliveryState.FAILED, None)
