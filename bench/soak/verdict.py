"""The soak's verdict: does anything keep growing once its retention applies, does the
p99 latency drift, does every mission complete."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.soak.config import SoakConfig
from bench.soak.load import Completions, Load, Timings, p99
from bench.soak.sampling import KEPT, PRUNED, Key, Sample

GROWTH_TOLERANCE = 0.10
LATENCY_TOLERANCE = 0.20
#: Sizes move in 8 kB pages and index splits: growth below this is not a trend.
SIZE_FLOOR_BYTES = 2**20
RSS_FLOOR_MB = 8.0


@dataclass(frozen=True)
class Finding:
    check: str
    series: str
    verdict: str  # ok | FAIL | not judged | shown (never judged)
    detail: str

    @property
    def failed(self) -> bool:
        return self.verdict == "FAIL"


def thirds(items: Sequence[Any]) -> tuple[Sequence[Any], Sequence[Any], Sequence[Any]]:
    a, b = round(len(items) / 3), round(2 * len(items) / 3)
    return items[:a], items[a:b], items[b:]


def growth_checks(last: Sample, config: SoakConfig) -> list[tuple[Key, float, float, float]]:
    """(series, seconds until it can be steady, relative tolerance, absolute floor)."""
    checks: list[tuple[Key, float, float, float]] = []
    for table in PRUNED:
        checks.append((("rows", table), config.table_settle_s, GROWTH_TOLERANCE, 0.0))
        checks.append((("bytes", table), config.table_settle_s, GROWTH_TOLERANCE, SIZE_FLOOR_BYTES))
    for kind, series in sorted(last.values):
        if kind == "topic_records":
            checks.append(((kind, series), config.topic_settle_s, GROWTH_TOLERANCE, 0.0))
        elif kind == "rss_mb":
            checks.append(((kind, series), config.table_settle_s, GROWTH_TOLERANCE, RSS_FLOOR_MB))
    return checks


def growth_findings(samples: Sequence[Sample], config: SoakConfig) -> list[Finding]:
    """Does anything keep growing once its retention applies? Last third vs middle third."""
    load = [s for s in samples if s.phase == "load"]
    _first, middle, last = thirds(load)
    if not middle or not last:
        return [Finding("growth", "all", "not judged", f"{len(load)} samples under load")]
    middle_from = middle[0].elapsed_s
    findings = []
    for key, settle_s, tolerance, floor in growth_checks(load[-1], config):
        name = f"{key[0]} growth"
        if settle_s > middle_from:
            detail = f"steady after {settle_s:.0f} s; middle third starts at {middle_from:.0f} s"
            findings.append(Finding(name, key[1], "not judged", detail))
            continue
        before = max(s.values.get(key, 0.0) for s in middle)
        after = max(s.values.get(key, 0.0) for s in last)
        grew = after > before * (1 + tolerance) + floor
        change = f"{(after / before - 1) * 100:+.1f} %" if before else "from 0"
        detail = (
            f"max {fmt_value(before)} (middle third) -> {fmt_value(after)} (last third), {change}"
        )
        findings.append(Finding(name, key[1], "FAIL" if grew else "ok", detail))
    findings.extend(row_size_findings(middle, last))
    return findings


def row_size_findings(middle: Sequence[Sample], last: Sequence[Sample]) -> list[Finding]:
    """Tables kept by design grow with the missions; their bytes per row must not."""
    findings = []
    for table in KEPT:

        def per_row(sample: Sample, table: str = table) -> float:
            rows = sample.values.get(("rows", table), 0.0)
            return sample.values.get(("bytes", table), 0.0) / rows if rows else 0.0

        before, after = per_row(middle[-1]), per_row(last[-1])
        grew = before > 0 and after > before * (1 + GROWTH_TOLERANCE)
        detail = f"{before:.0f} -> {after:.0f} bytes per row (grows by design, one row a mission)"
        findings.append(Finding("bytes per row", table, "FAIL" if grew else "ok", detail))
    return findings


def latency_findings(
    posts: Timings, e2e: Timings, *, warm_until: float, load_end: float, window_s: float
) -> list[Finding]:
    """Drift of p99 latency: the last third of the load phase vs the first third after
    warm-up, each third's figure being the median of its windows' p99. A trend moves
    every window; a burst of other work on the machine moves a few, and not the median.
    """
    span = (load_end - warm_until) / 3
    if span < 3 * window_s:
        return [Finding("latency drift", "p99", "not judged", "load too short after warm-up")]
    findings = []
    for name, timings in (("POST", posts), ("end_to_end", e2e)):
        first = windowed_p99(timings, warm_until, warm_until + span, window_s)
        last = windowed_p99(timings, load_end - span, load_end, window_s)
        drift = last / first - 1 if first > 0 else float("nan")
        pooled = (
            p99(timings.between(warm_until, warm_until + span)),
            p99(timings.between(load_end - span, load_end)),
        )
        detail = (
            f"median window p99 {first * 1000:.0f} ms (first third) -> {last * 1000:.0f} ms "
            f"({drift:+.0%}); pooled p99 {pooled[0] * 1000:.0f} -> {pooled[1] * 1000:.0f} ms"
        )
        verdict = "FAIL" if drift > LATENCY_TOLERANCE else "ok"
        findings.append(Finding("latency drift", name, verdict, detail))
    return findings


def machine_finding(samples: Sequence[Sample], warm_until_s: float) -> Finding:
    """The machine probe's median, first third after warm-up vs last third: shown next to
    the latency drift (the same thirds), never judged."""
    timed = [s for s in samples if s.phase == "load" and s.elapsed_s >= warm_until_s]
    first, _middle, last = thirds(
        [s.values[("machine", "probe_ms")] for s in timed if ("machine", "probe_ms") in s.values]
    )
    if not first or not last:
        return Finding("machine speed", "probe", "shown", "too few samples")
    before, after = statistics.median(first), statistics.median(last)
    detail = (
        f"median {before:.1f} ms (first third) -> {after:.1f} ms (last third), "
        f"{after / before - 1:+.0%}: the same work, timed under the run's load"
    )
    return Finding("machine speed", "probe", "shown", detail)


def windowed_p99(timings: Timings, start: float, end: float, window_s: float) -> float:
    """Median over the windows of [start, end) of each window's p99."""
    figures = []
    at = start
    while at + window_s <= end:
        values = timings.between(at, at + window_s)
        if len(values) >= 20:  # a p99 of fewer values is its maximum
            figures.append(p99(values))
        at += window_s
    return statistics.median(figures) if figures else float("nan")


def completion_finding(load: Load, completions: Completions, last: Sample) -> Finding:
    lost = load.accepted - completions.completed
    others = {
        status: int(n)
        for (kind, status), n in last.values.items()
        if kind == "missions" and status != "completed"
    }
    detail = (
        f"{load.accepted} accepted, {completions.completed} completed, not completed "
        f"{others or 'none'}, {load.errors} POST errors (retried)"
    )
    return Finding("every mission completes", "missions", "FAIL" if lost else "ok", detail)


def bucket_finding(listed: int, load: Load) -> Finding:
    """One object per accepted mission (simulate's particles file, under its deterministic
    key): more is a leak of objects nothing refers to, fewer a lost result. Nothing can
    have expired: lifecycle rules count in days."""
    detail = f"{listed:,} objects listed after the load, {load.accepted:,} missions accepted"
    verdict = "ok" if listed == load.accepted else "FAIL"
    return Finding("one object per mission", "bucket", verdict, detail)


def fmt_value(value: float) -> str:
    if abs(value) >= 2**20:
        return f"{value / 2**20:.1f} MiB" if value > 10_000_000 else f"{value:,.0f}"
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"
