"""A library's repeated log line goes through once per window, with a count of the rest."""

from __future__ import annotations

import logging

from driftline.logs import RepeatedLines


def _record(name: str, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, None)


def test_repeats_are_held_back_within_the_window_and_counted_after() -> None:
    now = [0.0]
    lines = RepeatedLines(window_s=30.0, clock=lambda: now[0])
    template = "Unable connect to node with id %s: %s"
    assert lines.filter(_record("aiokafka.conn", template, 1, "refused"))
    held = [lines.filter(_record("aiokafka.conn", template, n, "refused")) for n in (1, 2, 3)]
    assert held == [False, False, False], "same template: held back, whatever the node"
    assert lines.filter(_record("aiokafka.conn", "Unable to update metadata from %s", [1]))
    now[0] = 31.0
    again = _record("aiokafka.conn", template, 1, "refused")
    assert lines.filter(again)
    assert again.getMessage() == (
        "Unable connect to node with id 1: refused (and 3 more like it in the last 30 s)"
    )


def test_other_loggers_pass_untouched() -> None:
    lines = RepeatedLines(clock=lambda: 0.0)
    assert all(lines.filter(_record("driftline.runner", "runner.outage")) for _ in range(5))
