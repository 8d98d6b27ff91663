"""What a stage is: a plain async function from one validated event to the events it emits.

A stage knows nothing of offsets, commits, retries or topics; the runner does. Its
dependencies are its keyword-only parameters, named after what they are
(`storage`, `pool`, `subsets`, ...): the bootstrap matches those names against the
adapters it built and binds them (cosmicpython's `inject_dependencies`), so a unit test
simply calls the function with fakes.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from driftline.contracts.envelope import Envelope
from driftline.contracts.events import EventData
from driftline.contracts.missions import MissionStatus
from driftline.contracts.results import MissionResult
from driftline.errors import ConfigurationError

if TYPE_CHECKING:
    from driftline.db.unit_of_work import Database
    from driftline.runtime.apply import ExactlyOnce

E = TypeVar("E", bound=EventData)


@dataclass
class StageOutcome:
    """What a stage produced; the runner commits it in one transaction.

    `status` None changes nothing but marks the event applied (a shard's completion
    that postprocess only waits on).
    """

    status: MissionStatus | None
    emits: list[EventData] = field(default_factory=list)
    result: MissionResult | None = None  # stored on the mission row
    detail: str | None = None
    completed: bool = False
    #: A simulated shard for the mission's shard ledger (its `SimulationCompletedV1`).
    shard: EventData | None = None
    #: The mission's shards were merged into this outcome: empty its ledger.
    shards_merged: bool = False


StageFunction = Callable[..., Awaitable[StageOutcome]]
BoundStage = Callable[[Envelope[Any]], Awaitable[StageOutcome]]
#: Builds a stage's exactly-once effects from (stage name, consumer group, database,
#: bound stage function); `ExactlyOnce` (the mission pipeline's) unless a stage names its own.
EffectsFactory = Callable[[str, str, "Database", BoundStage], "ExactlyOnce"]


@dataclass(frozen=True)
class Stage(Generic[E]):
    """One declaration per stage: its name, the event it consumes and its function."""

    name: str
    consumes: type[E]
    run: StageFunction
    #: A stage working beside the mission pipeline (search planning, on completed
    #: missions) applies its outcomes with its own subclass of `ExactlyOnce`: the same
    #: guarantee (claim, effect and emitted events in one transaction), other rows.
    effects: EffectsFactory | None = None

    @property
    def dependencies(self) -> tuple[str, ...]:
        """The names of the keyword-only parameters the function asks for."""
        return tuple(
            name
            for name, param in inspect.signature(self.run).parameters.items()
            if param.kind is inspect.Parameter.KEYWORD_ONLY
        )

    def bind(self, available: Mapping[str, Any]) -> BoundStage:
        """The function with its dependencies filled in from `available`, by name."""
        missing = [name for name in self.dependencies if name not in available]
        if missing:
            raise ConfigurationError(f"stage {self.name} needs {', '.join(missing)}; not wired")
        return partial(self.run, **{name: available[name] for name in self.dependencies})
