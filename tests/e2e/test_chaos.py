"""The chaos run, short: 40 missions while every process and service is SIGKILLed once.

The same code as `make chaos` (bench/chaos.py), on services of its own: nothing is lost,
stuck, duplicated under another `ce_id` or left behind (processes, work folders).
"""

from __future__ import annotations

from bench.chaos import FAULT_KINDS, ChaosConfig, print_report, run_chaos


async def test_short_chaos_run_loses_nothing() -> None:
    config = ChaosConfig(missions=40, rate_per_s=0.5, seed=11, settle_timeout_s=600, replicas=1)
    report = await run_chaos(config)
    print_report(report)
    assert sorted(f.kind for f in report.faults) == sorted(FAULT_KINDS), "one fault of each kind"
    assert report.ok, report.problems()
    assert report.accepted == config.missions
    assert report.completed + sum(report.failed.values()) + report.held == config.missions
