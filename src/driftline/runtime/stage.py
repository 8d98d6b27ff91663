"""What a stage is: a plain async function from one validated event to the events it emits.

A stage knows nothing of offsets, commits, retries or topics; the runner does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import httpx

from driftline.contracts.envelope import Envelope
from driftline.contracts.events import EventData
from driftline.contracts.missions import MissionStatus
from driftline.settings import Settings

if TYPE_CHECKING:
    from driftline.storage.base import ArtifactStore

E = TypeVar("E", bound=EventData)


@dataclass
class StageContext:
    """The dependencies a stage may use, wired once per process by `bootstrap`."""

    settings: Settings
    storage: ArtifactStore
    http: httpx.AsyncClient
    # Optional, per stage: the warm simulation pool, the forcing catalog, etc.
    services: dict[str, Any] = field(default_factory=dict)

    def service(self, name: str) -> Any:
        try:
            return self.services[name]
        except KeyError:
            raise RuntimeError(f"stage context has no {name!r} service wired") from None


@dataclass
class StageOutcome:
    """What a stage produced; the runner commits it in one transaction."""

    status: MissionStatus
    emits: list[EventData] = field(default_factory=list)
    result: dict[str, Any] | None = None  # stored on the mission row (results, summary)
    detail: str | None = None
    completed: bool = False


StageFunction = Callable[[Envelope[E], StageContext], Awaitable[StageOutcome]]


@dataclass(frozen=True)
class Stage(Generic[E]):
    """A named stage: its input event type and its function."""

    name: str
    consumes: type[E]
    run: StageFunction[E]
