"""The soak run itself: start the deployment, drive load and samples, report, judge."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import bench.soak
from bench.processes import Child, free_port
from bench.soak.config import FULL_SIZE, LAYOUTS, SoakConfig, soak_settings, with_retention
from bench.soak.deploy import (
    cleanup,
    deployment,
    prefill,
    prepare_topics,
    service_pids,
    services,
    wait_ready,
)
from bench.soak.load import Completions, Load
from bench.soak.report import DOCS_IMAGE, OUT_DIR, plot, print_findings, print_summary, write_csv
from bench.soak.sampling import FINAL_OR_HELD, Sample, Sampler, listed_objects
from bench.soak.stages import SOAK_STAGES, serve_stages
from bench.soak.verdict import (
    Finding,
    bucket_finding,
    completion_finding,
    growth_findings,
    latency_findings,
    machine_finding,
)
from driftline.auth import create_api_key
from driftline.db.unit_of_work import Database
from driftline.infra.manager import ensure_bucket
from driftline.logs import configure_logging
from driftline.retention import RetentionPolicy
from driftline.runtime.lifecycle import stop_on_signals
from driftline.settings import PROJECT_ROOT, Settings, load_settings
from tests.helpers import create_database
from tests.receiver import LoopbackReceiver


@dataclass
class Run:
    config: SoakConfig
    settings: Settings
    children: list[Child]
    api_key: str
    database: str
    services: dict[str, int] = field(default_factory=dict)  # service -> pid, for its CPU
    interrupted: asyncio.Event = field(default_factory=asyncio.Event)
    started: float = 0.0
    load_end: float = 0.0


async def drive(run: Run, receiver: LoopbackReceiver) -> list[Finding]:
    """Load, completions and samples until every mission is final and the tail is over."""
    config = run.config
    load = Load(run.settings.public_base_url, run.api_key, config, receiver.url("/soak-hook"))
    completions = Completions(run.settings, load)
    sampler = Sampler(
        run.settings, config, run.children, load, completions, run.database, run.services
    )
    stop = asyncio.Event()
    reader = asyncio.create_task(completions.run(stop))
    run.started = time.time()
    await sampler.take(run.started)
    load_task = asyncio.create_task(load.run())
    drained_at: float | None = None
    try:
        while True:
            await _sleep_watching(config.sample_s, run, load_task)
            receiver.received.clear()  # counted by the database; kept, it would grow
            if run.interrupted.is_set() and not load.done:
                load_task.cancel()  # Ctrl-C: stop sending, report what was seen
                load.done = True
            if load.done and not run.load_end:
                run.load_end = time.time()
            if run.interrupted.is_set():
                await sampler.take(run.started)
                break
            sample = await sampler.take(run.started)
            _progress(sample, load, completions)
            if run.load_end and drained_at is None:
                final = sum(sample.values.get(("missions", s), 0) for s in FINAL_OR_HELD)
                finished = completions.completed >= load.accepted or final >= load.accepted
                if finished or time.time() - run.load_end > config.drain_timeout_s:
                    drained_at = time.time()
            if drained_at is not None and time.time() - drained_at >= config.table_settle_s:
                break
    finally:
        stop.set()
        await reader
        load_task.cancel()
    listed = await asyncio.to_thread(listed_objects, run.settings)
    sampler.samples[-1].values[("objects", "listed")] = float(listed)
    findings = _report(run, sampler, load, completions, drained_at or time.time())
    return [*findings, bucket_finding(listed, load)]


async def _sleep_watching(seconds: float, run: Run, load: asyncio.Task[None]) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not run.interrupted.is_set():
        for child in run.children:
            if not child.alive():
                raise SystemExit(f"{child.name} died:\n{child.log_text()[-3000:]}")
        if load.done() and load.exception() is not None:
            raise SystemExit(f"load generator failed: {load.exception()!r}")
        await asyncio.sleep(1)


def _progress(sample: Sample, load: Load, completions: Completions) -> None:
    v = sample.values
    print(
        f"{sample.elapsed_s:7.0f} s {sample.phase:5} accepted {load.accepted:>7} "
        f"completed {completions.completed:>7} in flight {v[('pipeline', 'in_flight')]:>6.0f} "
        f"POST p99 {v[('latency_p99_s', 'POST')] * 1000:6.0f} ms "
        f"e2e p99 {v[('latency_p99_s', 'end_to_end')] * 1000:6.0f} ms "
        f"outbox rows {v.get(('rows', 'outbox'), 0):>7.0f} "
        f"processed rows {v.get(('rows', 'processed_events'), 0):>7.0f}",
        flush=True,
    )


def _report(
    run: Run, sampler: Sampler, load: Load, completions: Completions, drained_at: float
) -> list[Finding]:
    config = run.config
    load_s = run.load_end - run.started
    findings = [completion_finding(load, completions, sampler.samples[-1])]
    findings += growth_findings(sampler.samples, config)
    findings += latency_findings(
        load.posts,
        completions.e2e,
        warm_until=run.started + config.table_settle_s,
        load_end=run.load_end,
        window_s=config.sample_s,
    )
    findings.append(machine_finding(sampler.samples, config.table_settle_s))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    csv_path, png_path = OUT_DIR / f"soak-{stamp}.csv", OUT_DIR / f"soak-{stamp}.png"
    write_csv(sampler.samples, csv_path)
    title = (
        f"Driftline soak: {load.accepted:,} missions at {config.rate_per_s:g}/s, "
        f"retention {config.retention_s:g} s ({stamp})"
    )
    marks = {
        "tables steady": config.table_settle_s,
        "topics steady": config.topic_settle_s,
        "load ends": load_s,
        "all completed": drained_at - run.started,
    }
    plot(sampler.samples, png_path, title, marks)
    if config.missions >= FULL_SIZE:
        DOCS_IMAGE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png_path, DOCS_IMAGE)
    print_summary(sampler.samples, load, completions, load_s)
    print(f"\nsamples: {csv_path}\nplot:    {png_path}")
    return findings


async def soak(config: SoakConfig) -> int:
    base = load_settings()
    run_id = uuid.uuid4().hex[:6]
    local = services(base, config, run_id)
    local.up()
    admin_url = local.postgres.database_url
    database = f"soak_{run_id}"
    url = await create_database(admin_url, database)
    port = free_port()
    settings = with_retention(soak_settings(base, local, url, run_id), config)
    settings = settings.model_copy(update={"public_base_url": f"http://127.0.0.1:{port}"})
    try:
        RetentionPolicy.from_settings(settings).check()
        ensure_bucket(local.minio.endpoint, settings, settings.s3_bucket)
        await prepare_topics(settings, config)
        db = Database(settings)
        async with db.unit_of_work() as uow:
            api_key = await create_api_key(uow, "soak")
        await db.close()
        await prefill(url, config.prefill_missions)
        logs = PROJECT_ROOT / ".driftline" / "soak" / run_id / "logs"
        children = deployment(settings, config, logs, port)
        run = Run(
            config,
            settings,
            children,
            api_key,
            database,
            services=service_pids(local),
            interrupted=stop_on_signals(),
        )
        findings = await _with_children(run, logs)
    finally:
        if not config.keep and not config.private_services:  # private ones go whole, below
            await cleanup(settings, admin_url, database)
        if config.private_services:
            local.down()  # with --keep, its data stays in the run's folder
        if not config.keep:
            shutil.rmtree(PROJECT_ROOT / ".driftline" / "soak" / run_id, ignore_errors=True)
    print_findings(findings)
    failed = [f for f in findings if f.failed]
    print(f"\nsoak {'FAILED' if failed else 'passed'}: {len(failed)} failing check(s)")
    return 1 if failed else 0


async def _with_children(run: Run, logs: Path) -> list[Finding]:
    print(f"logs: {logs}", flush=True)
    try:
        for child in run.children:
            child.start()
        await wait_ready(run.children, run.settings.public_base_url, len(SOAK_STAGES))
        async with LoopbackReceiver([204]) as receiver:
            return await drive(run, receiver)
    finally:
        for child in reversed(run.children):
            await child.stop()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak",
        description=bench.soak.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--missions", type=int, default=FULL_SIZE)
    parser.add_argument("--rate", type=float, default=SoakConfig.rate_per_s, help="missions/s")
    parser.add_argument("--retention-s", type=float, default=SoakConfig.retention_s)
    parser.add_argument("--sample-s", type=float, default=SoakConfig.sample_s)
    parser.add_argument(
        "--stage-processes",
        type=int,
        choices=sorted(LAYOUTS),
        default=2,
        help="processes running the five stage runners (2: validate+fetch_forcing+simulate, "
        "postprocess+notify)",
    )
    parser.add_argument(
        "--private-services",
        action="store_true",
        help="start a Kafka, PostgreSQL and MinIO of the run's own (free ports) instead of "
        "using the shared ones",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database, topics, bucket")
    parser.add_argument(
        "--prefill-missions",
        type=int,
        default=0,
        metavar="N",
        help="insert N completed missions before the load (latency vs the kept table's size)",
    )
    parser.add_argument("--stages-process", metavar="STAGES", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.stages_process:
        settings = load_settings()
        configure_logging(settings)
        asyncio.run(serve_stages(settings, args.stages_process.split(",")))
        return 0
    config = SoakConfig(
        missions=args.missions,
        rate_per_s=args.rate,
        retention_s=args.retention_s,
        sample_s=args.sample_s,
        stage_processes=LAYOUTS[args.stage_processes],
        private_services=args.private_services,
        keep=args.keep,
        prefill_missions=args.prefill_missions,
    )
    return asyncio.run(soak(config))
