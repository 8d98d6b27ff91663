"""Topic names: a configurable prefix (default `driftline.`) plus a fixed suffix.

Every topic follows from the event types (`EventData.topic`); the internal ones (those a
stage consumes) each have a dead-letter topic beside them.
"""

from __future__ import annotations

from driftline.contracts.events import EVENT_TYPES

PUBLIC_TOPICS: tuple[str, ...] = (
    "missions.completed",
    "missions.failed",
    "missions.status",
    "plans.completed",
)
DLQ_SUFFIX = ".dlq"


def topic(prefix: str, suffix: str) -> str:
    return f"{prefix}{suffix}"


def dlq_topic(input_topic: str) -> str:
    return f"{input_topic}{DLQ_SUFFIX}"


def consumer_group(prefix: str, stage: str) -> str:
    """`driftline.<stage>` with the default prefix (contract.md); a test prefix keeps its own."""
    return f"{prefix}{stage}"


def internal_topics() -> list[str]:
    """Suffixes of the topics stages consume (everything not public)."""
    return sorted({cls.topic for cls in EVENT_TYPES} - set(PUBLIC_TOPICS))


def all_topics(prefix: str) -> list[str]:
    """Every topic Driftline uses, dead-letter topics included."""
    suffixes = sorted({cls.topic for cls in EVENT_TYPES})
    names = [topic(prefix, s) for s in suffixes]
    names += [dlq_topic(topic(prefix, s)) for s in internal_topics()]
    return names
