"""The chaos run's fault schedule: repeatable from its seed, one fault per kind and round,
spread over the submission window."""

from __future__ import annotations

from collections import Counter

from bench.chaos import FAULT_KINDS, ChaosConfig, Report


def test_same_seed_same_schedule_every_kind_each_round() -> None:
    config = ChaosConfig(missions=200, rate_per_s=0.4, seed=7, rounds=2)
    schedule = config.schedule()
    assert schedule == ChaosConfig(missions=200, rate_per_s=0.4, seed=7, rounds=2).schedule()
    assert schedule != ChaosConfig(missions=200, rate_per_s=0.4, seed=8, rounds=2).schedule()
    assert Counter(kind for _, kind in schedule) == {kind: 2 for kind in FAULT_KINDS}
    times = [at for at, _ in schedule]
    window = 200 / 0.4
    assert times == sorted(times)
    assert window * 0.1 <= times[0] and times[-1] <= window
    assert times[-1] >= window * 0.8, "the last fault comes near the end of the load"


def test_a_run_without_faults_has_an_empty_schedule() -> None:
    assert ChaosConfig(rounds=0).schedule() == []


def test_problems_are_what_fails_the_run() -> None:
    report = Report(ChaosConfig(), accepted=10, completed=9, held=1)
    assert report.ok, "a held mission with its reason is not a failure of the run"
    report.held_without_reason = 1
    report.duplicates_same_id = 3  # at-least-once delivery: allowed
    report.orphans = ["123 (parent 1): python -c from multiprocessing.spawn import ..."]
    assert report.problems() == ["1 held without reason", "1 orphan processes"]
