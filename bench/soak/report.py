"""The soak's outputs: CSV, plot (PNG) and the tables printed for docs/benchmarks.md."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bench.soak.load import Completions, Load, p99
from bench.soak.sampling import KEPT, PRUNED, Sample
from bench.soak.verdict import Finding, fmt_value, thirds
from driftline.settings import PROJECT_ROOT

OUT_DIR = PROJECT_ROOT / "bench" / "out"
DOCS_IMAGE = PROJECT_ROOT / "docs" / "images" / "soak.png"


PANELS = (
    ("rows", "table rows", True),
    ("bytes", "table + index size (bytes)", True),
    ("topic_records", "topic records (end - start offsets)", True),
    ("objects", "bucket objects", False),
    ("rss_mb", "process RSS (MiB)", False),
    ("cpu_cores", "process CPU (cores)", False),
    ("latency_p99_s", "p99 latency in window (s)", True),
    ("pipeline", "missions per s / in flight", False),
    ("db", "PostgreSQL transactions per s", False),
)


def write_csv(samples: Sequence[Sample], path: Path) -> None:
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["elapsed_s", "phase", "kind", "series", "value"])
        for sample in samples:
            for (kind, series), value in sorted(sample.values.items()):
                writer.writerow([f"{sample.elapsed_s:.1f}", sample.phase, kind, series, value])


#: Panels show the tables with a rule (and missions); the fixed small ones are in the CSV.
PLOTTED_TABLES = frozenset((*PRUNED, *KEPT))
#: Drawn on the right-hand axis of its panel (another scale).
SECONDARY = {("pipeline", "in_flight")}


def plot(samples: Sequence[Sample], path: Path, title: str, marks: dict[str, float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 3, figsize=(18, 13), constrained_layout=True)
    minutes = [s.elapsed_s / 60 for s in samples]
    for ax, (kind, label, log) in zip(axes.flat, PANELS, strict=True):
        ax.set_prop_cycle(color=[plt.get_cmap("tab20")(i) for i in range(20)])  # 20 apart
        right = ax.twinx() if any(k[0] == kind for k in SECONDARY) else None
        for name in _series(samples, kind):
            ys = [s.values.get((kind, name), float("nan")) for s in samples]
            on = right if right is not None and (kind, name) in SECONDARY else ax
            style = "--" if on is right else "-"
            single = sum(y == y for y in ys) == 1  # one figure (not NaN): a point, not a line
            on.plot(minutes, ys, style, label=name, linewidth=1.2, marker="o" if single else None)
        if log:
            ax.set_yscale("symlog" if kind != "latency_p99_s" else "log")
        _marks(ax, marks)
        ax.set_xlim(min(minutes), max(minutes))  # a panel of one point spans the run too
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("minutes")
        ax.grid(True, alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        if right is not None:
            more = right.get_legend_handles_labels()
            handles, labels = handles + more[0], labels + more[1]
            right.set_ylabel("in flight (dashed)", fontsize=8)
        if handles:
            ax.legend(handles, labels, fontsize=6, ncol=2 if len(labels) > 6 else 1)
    fig.suptitle(title)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _series(samples: Sequence[Sample], kind: str) -> list[str]:
    names = sorted({k[1] for s in samples for k in s.values if k[0] == kind})
    if kind in ("rows", "bytes"):
        names = [n for n in names if n in PLOTTED_TABLES]
    return names


def _marks(ax: Any, marks: dict[str, float]) -> None:
    for mark, at in marks.items():
        ax.axvline(at / 60, color="grey", linestyle=":", linewidth=0.8)
        ax.text(
            at / 60,
            0.99,
            f" {mark}",
            transform=ax.get_xaxis_transform(),
            fontsize=7,
            va="top",
            rotation=90,
            color="grey",
        )


def _missing(value: float | None) -> bool:
    return value is None or value != value  # NaN: no rate yet


def print_findings(findings: Iterable[Finding]) -> None:
    print("\n| check | series | verdict | detail |\n|---|---|---|---|")
    for f in findings:
        print(f"| {f.check} | {f.series} | {f.verdict} | {f.detail} |")


def print_summary(
    samples: Sequence[Sample], load: Load, completions: Completions, load_s: float
) -> None:
    """Steady-state figures for docs/benchmarks.md: the last third of the load phase."""
    under_load = [s for s in samples if s.phase == "load"]
    _first, _middle, last = thirds(under_load)
    if not last:
        return
    print(
        f"\n{load.accepted} missions accepted in {load_s:.0f} s "
        f"({load.accepted / load_s:.1f}/s), {completions.completed} completed"
    )
    print("\n| series | steady (mean of last third) | max of last third |\n|---|---|---|")
    for key in sorted(last[-1].values):
        if key[0] in ("rows", "bytes", "topic_records", "objects", "rss_mb", "cpu_cores", "db"):
            values = [s.values[key] for s in last if not _missing(s.values.get(key))]
            if values:
                mean = sum(values) / len(values)
                print(f"| {key[0]} {key[1]} | {fmt_value(mean)} | {fmt_value(max(values))} |")
    for name, timings in (("POST", load.posts), ("end to end", completions.e2e)):
        everything = list(timings.seconds)
        if everything:
            everything.sort()
            p50 = everything[len(everything) // 2]
            print(
                f"| latency {name} over the run | p50 {p50 * 1000:.0f} ms | "
                f"p99 {p99(everything) * 1000:.0f} ms |"
            )
