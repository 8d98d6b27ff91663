"""Topic names: a configurable prefix (default `driftline.`) plus a fixed suffix."""

from __future__ import annotations

from driftline.contracts.events import EVENT_TYPES

STAGE_INPUTS: dict[str, str] = {
    "validate": "missions.requested",
    "fetch_forcing": "missions.validated",
    "simulate": "forcing.ready",
    "postprocess": "simulations.completed",
    "notify": "results.ready",
}
"""The topic each stage consumes (suffix)."""

STAGES: tuple[str, ...] = tuple(STAGE_INPUTS)
PUBLIC_TOPICS: tuple[str, ...] = ("missions.completed", "missions.failed", "missions.status")
DLQ_SUFFIX = ".dlq"


def topic(prefix: str, suffix: str) -> str:
    return f"{prefix}{suffix}"


def dlq_topic(input_topic: str) -> str:
    return f"{input_topic}{DLQ_SUFFIX}"


def consumer_group(stage: str) -> str:
    """The consumer group of a stage, fixed by DESIGN.md (not prefixed)."""
    return f"driftline.{stage}"


def all_topics(prefix: str) -> list[str]:
    """Every topic Driftline uses, dead-letter topics included."""
    suffixes = sorted({cls.topic for cls in EVENT_TYPES})
    names = [topic(prefix, s) for s in suffixes]
    names += [dlq_topic(topic(prefix, s)) for s in STAGE_INPUTS.values()]
    return names
