"""Server-Sent Events of mission status, fed by PostgreSQL LISTEN/NOTIFY.

A trigger (migration 0004) notifies `driftline_mission_status` with the mission id
whenever a status change is recorded, whichever process recorded it. Each API process
holds one listening connection (`StatusFeed`) and wakes the streams of that mission;
a woken stream reads the new changes from the table, so a notification lost while the
listener reconnects costs nothing: the listener wakes every stream when it is back,
and every stream re-reads at each keep-alive anyway. Streams per API key are capped
(`StreamSlots`), and a stream ends at a final status or after an idle time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import structlog
from sqlalchemy.engine import make_url

from driftline.contracts.missions import MissionStatus
from driftline.db.unit_of_work import Database
from driftline.missions import status_change_payload

log = structlog.get_logger("driftline.api.streams")

CHANNEL = "driftline_mission_status"
#: Largest id a `Last-Event-ID` may carry (the ids are PostgreSQL bigints).
MAX_EVENT_ID = 2**63 - 1
_EVENT_ID = re.compile(r"[0-9]{1,19}")


def parse_last_event_id(value: str | None) -> int:
    """The id to resume after; anything but ASCII digits within int64 is ignored (0).

    `str.isdigit()` is not enough: it accepts `²` and other digits `int()` refuses.
    """
    if value is None or _EVENT_ID.fullmatch(value.strip()) is None:
        return 0
    number = int(value.strip())
    return number if number <= MAX_EVENT_ID else 0


def asyncpg_dsn(database_url: str) -> str:
    """The SQLAlchemy URL as a plain libpq DSN asyncpg accepts."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class StatusFeed:
    """One LISTEN connection per API process, fanning notifications out to streams."""

    def __init__(
        self, dsn: str, *, retry_s: float = 1.0, ping_s: float = 30.0, connect_timeout_s: float = 5
    ) -> None:
        self._dsn = dsn
        self._retry_s = retry_s
        self._ping_s = ping_s
        self._connect_timeout_s = connect_timeout_s
        self._waiters: defaultdict[str, set[asyncio.Event]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self.listening = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="driftline-status-feed")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @contextlib.contextmanager
    def subscribe(self, mission_id: uuid.UUID) -> Iterator[asyncio.Event]:
        """An event set whenever `mission_id` may have a new status change."""
        key = str(mission_id)
        wake = asyncio.Event()
        self._waiters[key].add(wake)
        try:
            yield wake
        finally:
            waiters = self._waiters.get(key)
            if waiters is not None:
                waiters.discard(wake)
                if not waiters:
                    del self._waiters[key]

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        for wake in self._waiters.get(payload, ()):
            wake.set()

    def _wake_all(self) -> None:
        for waiters in self._waiters.values():
            for wake in waiters:
                wake.set()

    async def _run(self) -> None:
        while True:
            try:
                await self._listen_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # PostgreSQL down or restarting: try again shortly
                log.warning("status_feed.disconnected", error=f"{type(exc).__name__}: {exc}")
            self.listening = False
            await asyncio.sleep(self._retry_s)

    async def _listen_once(self) -> None:
        conn = await asyncpg.connect(self._dsn, timeout=self._connect_timeout_s)
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        try:
            await conn.add_listener(CHANNEL, self._on_notify)
            self.listening = True
            self._wake_all()  # changes committed while nobody listened are read now
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), self._ping_s)
                if not lost.is_set():
                    # A silently dropped connection only shows when used.
                    await conn.fetchval("SELECT 1", timeout=self._connect_timeout_s)
        finally:
            self.listening = False
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), self._connect_timeout_s)


@dataclass
class StreamSlots:
    """Open status streams per API key, at most `limit` each."""

    limit: int
    _open: dict[Hashable, int] = field(default_factory=dict)

    def acquire(self, key: Hashable) -> Callable[[], None] | None:
        """A release function for a new stream of `key`, or None if it has `limit` open.

        The release function is idempotent, so every way a stream can end may call it.
        """
        if self._open.get(key, 0) >= self.limit:
            return None
        self._open[key] = self._open.get(key, 0) + 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            left = self._open.get(key, 0) - 1
            if left > 0:
                self._open[key] = left
            else:
                self._open.pop(key, None)

        return release

    def open(self, key: Hashable) -> int:
        return self._open.get(key, 0)


@dataclass(frozen=True)
class StreamTiming:
    """How long a quiet stream lives, and how often it says it is alive."""

    idle_timeout_s: float
    keepalive_s: float


def _event(change_id: int, payload: dict[str, Any]) -> bytes:
    return f"id: {change_id}\nevent: status\ndata: {json.dumps(payload)}\n\n".encode()


async def status_events(
    database: Database,
    feed: StatusFeed,
    mission_id: uuid.UUID,
    *,
    after: int,
    timing: StreamTiming,
) -> AsyncIterator[bytes]:
    """One SSE `status` event per change after `after`, until a final status or idle."""
    with feed.subscribe(mission_id) as wake:
        last_change = time.monotonic()
        while True:
            wake.clear()  # before reading, so a change committed meanwhile re-wakes us
            async with database.unit_of_work() as uow:
                changes = await uow.missions.changes_after(mission_id, after)
            for change in changes:
                after = change.id
                yield _event(change.id, status_change_payload(change))
                if MissionStatus(change.status).is_final:
                    return
            now = time.monotonic()
            if changes:
                last_change = now
            idle_left = timing.idle_timeout_s - (now - last_change)
            if idle_left <= 0:
                yield b": idle, closing; reconnect with Last-Event-ID to resume\n\n"
                return
            try:
                await asyncio.wait_for(wake.wait(), min(timing.keepalive_s, idle_left))
            except TimeoutError:
                yield b": keep-alive\n\n"
