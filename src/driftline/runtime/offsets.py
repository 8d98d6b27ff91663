"""Offsets and lanes: which records are finished, and what may be committed. Pure code.

Records of a partition are dispatched to *lanes*, one per (partition, key): a lane runs
its records one after another (one mission's events never reorder) while lanes run
concurrently (a mission waiting for a retry never holds up another). Records finish
out of order, so a partition's commit point is its lowest unfinished offset: committing
never skips a record that is still being worked on.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

P = TypeVar("P", bound=Hashable)  # a partition (aiokafka's TopicPartition in production)
R = TypeVar("R")  # a record

#: Pause fetching from a partition with this many unfinished records; resume below the
#: lower mark. Two marks, so a partition does not flap between paused and resumed.
PAUSE_ABOVE = 500
RESUME_BELOW = 250


@dataclass
class PartitionProgress:
    """Unfinished offsets of one partition and what was last committed."""

    pending: dict[int, float] = field(default_factory=dict)  # offset -> record time (s)
    next_offset: int | None = None  # one past the highest dispatched offset
    committed: int | None = None

    def commit_point(self) -> int | None:
        """The offset to commit now, or None if nothing new is finished."""
        if self.next_offset is None:
            return None
        point = min(self.pending) if self.pending else self.next_offset
        return point if self.committed is None or point > self.committed else None


class OffsetTracker(Generic[P]):
    """Per-partition progress: dispatched, finished, committed, paused."""

    def __init__(self) -> None:
        self._partitions: dict[P, PartitionProgress] = {}
        self.paused: set[P] = set()

    def dispatched(self, partition: P, offset: int, timestamp_s: float = 0.0) -> None:
        progress = self._partitions.setdefault(partition, PartitionProgress())
        progress.pending[offset] = timestamp_s
        progress.next_offset = max(progress.next_offset or 0, offset + 1)

    def finished(self, partition: P, offset: int) -> None:
        progress = self._partitions.get(partition)
        if progress is not None:
            progress.pending.pop(offset, None)

    def commits_due(self) -> dict[P, int]:
        """Offsets to commit: each partition's lowest unfinished offset, if it advanced."""
        due = {tp: p.commit_point() for tp, p in self._partitions.items()}
        return {tp: offset for tp, offset in due.items() if offset is not None}

    def committed(self, offsets: dict[P, int]) -> None:
        for tp, offset in offsets.items():
            if tp in self._partitions:
                self._partitions[tp].committed = offset

    def forget(self, partitions: Iterable[P]) -> None:
        """Partitions revoked from this consumer: their progress is someone else's now."""
        for tp in partitions:
            self._partitions.pop(tp, None)
            self.paused.discard(tp)

    def backpressure(self) -> tuple[list[P], list[P]]:
        """Partitions to pause and to resume, given how much of each is unfinished."""
        pause, resume = [], []
        for tp, progress in self._partitions.items():
            if len(progress.pending) > PAUSE_ABOVE and tp not in self.paused:
                pause.append(tp)
            elif len(progress.pending) < RESUME_BELOW and tp in self.paused:
                resume.append(tp)
        self.paused.update(pause)
        self.paused.difference_update(resume)
        return pause, resume

    def unfinished(self) -> int:
        return sum(len(p.pending) for p in self._partitions.values())

    def position(self, partition: P) -> tuple[int | None, float | None]:
        """Committed offset and the time of the oldest unfinished record (None if none)."""
        progress = self._partitions.get(partition)
        if progress is None:
            return None, None
        oldest = progress.pending[min(progress.pending)] if progress.pending else None
        return progress.committed, oldest


@dataclass
class Lane(Generic[R]):
    """Records of one (partition, key), handled strictly in order."""

    records: deque[R] = field(default_factory=deque)
    busy: bool = False


class Lanes(Generic[P, R]):
    """The lanes of a consumer: which records wait behind which."""

    def __init__(self) -> None:
        self._lanes: dict[tuple[P, bytes], Lane[R]] = {}

    def add(self, partition: P, key: bytes, record: R) -> tuple[tuple[P, bytes], Lane[R]] | None:
        """Queue `record`; returns the lane if it was idle (the caller starts a worker)."""
        lane_key = (partition, key)
        lane = self._lanes.setdefault(lane_key, Lane())
        lane.records.append(record)
        if lane.busy:
            return None
        lane.busy = True
        return lane_key, lane

    def done(self, lane_key: tuple[P, bytes], lane: Lane[R]) -> None:
        """The lane's worker has emptied it."""
        if self._lanes.get(lane_key) is lane:
            del self._lanes[lane_key]

    def __len__(self) -> int:
        return len(self._lanes)
