"""The soak shows how fast the machine itself was next to the latency drift."""

from __future__ import annotations

import asyncio

from bench.soak.sampling import Sample, machine_probe
from bench.soak.verdict import machine_finding


def test_the_probe_times_real_work_in_a_child_process() -> None:
    values = asyncio.run(machine_probe())
    assert 0.1 < values[("machine", "probe_ms")] < 5_000


def test_the_finding_compares_the_thirds_after_warm_up_and_is_never_a_failure() -> None:
    samples = [Sample(30.0 * i, "load", {("machine", "probe_ms"): 10.0}) for i in range(4)]
    samples += [Sample(120.0 + 30 * i, "load", {("machine", "probe_ms"): 20.0}) for i in range(3)]
    samples += [Sample(210.0 + 30 * i, "load", {("machine", "probe_ms"): 25.0}) for i in range(3)]
    samples += [Sample(300.0 + 30 * i, "load", {("machine", "probe_ms"): 30.0}) for i in range(3)]
    samples.append(Sample(400.0, "drain", {("machine", "probe_ms"): 99.0}))
    finding = machine_finding(samples, warm_until_s=120.0)
    assert finding.verdict == "shown" and not finding.failed
    assert "20.0 ms (first third) -> 30.0 ms (last third), +50%" in finding.detail


def test_too_few_samples_are_said_so() -> None:
    assert machine_finding([], warm_until_s=0.0).detail == "too few samples"
