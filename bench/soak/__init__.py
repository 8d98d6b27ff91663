"""Soak run: a long steady stream of missions through the real API, relay and runners,
with retention in minutes, to show that every store stops growing once pruning starts.

    .venv/bin/python -m bench.soak [--missions 100000] [--rate 15] [--retention-s 120]
        [--stage-processes 1|2|5] [--private-services]
    make soak            # the full run, on services of its own (--private-services);
                         # make soak SOAK_ARGS="--missions 5000"

"The point is the bookkeeping": the five stages are the real runner (claim of the event
id, outbox rows, status history, commit) around synthetic stage functions that emit
valid events of the real contracts with tiny data (no OpenDrift; simulate stores one
tiny object per mission under the real key); notify is the real one (it is bookkeeping
only) and every tenth mission carries a callback to a loopback receiver, so webhook
deliveries are made and pruned too.

Processes, on the shared local Kafka, PostgreSQL and MinIO (or, `--private-services`,
a set of the run's own on free ports) with the run's own database, topic prefix and
bucket: `driftline api` (POSTs over HTTP on loopback, each with an Idempotency-Key),
`driftline relay` (which also runs housekeeping), the stage runners in one, two or five
processes (`python -m bench.soak --stages-process`), and this one (open-loop load,
completions, samples). Every `--sample-s` seconds it records each table's rows (the kept
`missions` table's from PostgreSQL's statistics: a count would load it more at every
sample as it grows) and total size (table + indexes), each topic's records (end - start
offsets), the bucket's objects (as MinIO's usage scanner last measured them; listed
through the S3 API once after the load), each process's RSS and CPU, PostgreSQL
transactions per second, and the p99 of POST latency and of end-to-end latency (POST to
the public `completed` event) in that window. It writes `bench/out/soak-<stamp>.csv` and `.png`
(and copies the PNG of a full-size run to docs/images/soak.png). Ctrl-C stops the load
and reports what was seen.

Exit status 1 if an accepted mission does not complete; if the bucket does not hold
exactly one object per accepted mission after the load; if a pruned table's rows or
size, a topic's records or a process's RSS keep growing once their retention applies
(the maximum of the last third of the load phase's samples exceeds the middle third's
by more than 10 %; sizes also by more than 1 MiB, RSS by more than 8 MiB); if the
missions table's bytes per row grow by more than 10 %; or if the p99 POST or end-to-end
latency drifts up by more than 20 % (median of the per-window p99s, last third of the
load phase vs the first third after warm-up). A series whose retention cannot have
applied before the middle third starts (a short run) is reported as not judged. Next to
the latency drift it shows (never judges) how long a fixed piece of work took on the
machine in the same thirds: on a shared two-core host at ~90 % CPU the latency moves with
the speed the host gives, and the probe tells that apart from the system slowing down.
"""
