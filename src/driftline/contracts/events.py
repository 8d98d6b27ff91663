"""Event data models, one small class per message, version in the type name.

A breaking change makes a new `...V2` class with a `.v2` type; these never change in place.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from driftline.contracts.missions import MissionCreate, MissionStatus
from driftline.contracts.plans import PlanCreate, PlanSummary, SearchRecord


class EventData(BaseModel):
    """Base of every event's data; `ce_type`, `topic` and `source` describe where it travels."""

    model_config = ConfigDict(extra="forbid")

    ce_type: ClassVar[str]
    topic: ClassVar[str]  # suffix after the configured prefix

    mission_id: uuid.UUID
    tenant: str

    def partition_key(self) -> str:
        """The Kafka key: the mission id, so one mission's events stay in order."""
        return str(self.mission_id)


class Shard(BaseModel):
    """One slice of a mission too large for one simulation: its own particles and seed.

    The split depends only on the mission (its particles and the deployment's shard
    size), never on how many workers there are, so the merged result is the same however
    the shards were spread.
    """

    index: int = Field(ge=0, description="0-based position of this shard.")
    count: int = Field(ge=2, description="How many shards the mission was split into.")
    particles: int = Field(ge=1, description="Particles this shard simulates.")
    seed: int = Field(description="This shard's own random seed, derived from the mission's.")
    key: str = Field(
        description="Kafka key of this shard's record, chosen so that the mission's shards "
        "land on consecutive partitions of the simulate stage's topic."
    )


class ArtifactRef(BaseModel):
    """A stored artifact as downstream consumers see it."""

    name: str
    media_type: str
    href: str
    bytes: int
    sha256: str


class ForcingUsed(BaseModel):
    """One forcing subset a simulation drifts on.

    A variable may have several, in the order OpenDrift consults them (preferred source
    first, coarser fallbacks after); once simulated, each says which share of the
    variable's particle-steps it served.
    """

    variable: str = Field(description="current, wind or stokes")
    source: str
    key: str = Field(description="Object-store key of the subset NetCDF.")
    synthetic: bool = False
    particle_steps: int | None = Field(
        default=None,
        description="Particle-steps (one particle at one time step) this source served; "
        "set once the simulation has run.",
    )
    share: float | None = Field(
        default=None,
        description="Fraction (0..1) of this variable's particle-steps served by this source; "
        "the shares of one variable sum to 1. Set once the simulation has run.",
    )


class Centroid(BaseModel):
    lat: float
    lon: float
    time: datetime | None = None


class ScenarioSummary(BaseModel):
    """One scenario's own figures, from its particles alone."""

    name: str
    weight: float = Field(description="The scenario's share of the weights (they sum to 1).")
    share: float = Field(description="Its share of the mission's particles (≈ weight).")
    particles_total: int
    particles_active: int
    particles_stranded: int
    centroid: Centroid
    area_km2: dict[str, float] = Field(
        description="Its own containment polygon areas keyed '50','90','95'."
    )


class MissionSummary(BaseModel):
    """The figures a coordinator reads first (of the weighted union of the scenarios)."""

    particles_total: int
    particles_active: int
    particles_stranded: int
    fraction_afloat: float
    centroid: Centroid
    area_km2: dict[str, float] = Field(
        description="Containment polygon areas keyed '50','90','95'."
    )
    forcing: list[ForcingUsed] = Field(default_factory=list)
    synthetic_forcing: bool = False
    scenarios: list[ScenarioSummary] = Field(
        default_factory=list, description="Each scenario's figures, in request order."
    )


class MissionRequestedV1(EventData):
    ce_type: ClassVar[str] = "driftline.mission.requested.v1"
    topic: ClassVar[str] = "missions.requested"

    requested_at: datetime
    request: MissionCreate


class MissionValidatedV1(EventData):
    ce_type: ClassVar[str] = "driftline.mission.validated.v1"
    topic: ClassVar[str] = "missions.validated"

    request: MissionCreate
    object_type_id: int
    object_type_key: str
    seed: int


class ForcingReadyV1(EventData):
    ce_type: ClassVar[str] = "driftline.forcing.ready.v1"
    topic: ClassVar[str] = "forcing.ready"

    request: MissionCreate
    object_type_id: int
    seed: int
    forcing: list[ForcingUsed]
    shard: Shard | None = Field(
        default=None, description="Set when the mission is simulated in shards: this one."
    )

    def partition_key(self) -> str:
        """A shard has a key of its own, so the shards of one mission spread over
        partitions and therefore over the simulate workers."""
        return str(self.mission_id) if self.shard is None else self.shard.key


class SimulationCompletedV1(EventData):
    ce_type: ClassVar[str] = "driftline.simulation.completed.v1"
    topic: ClassVar[str] = "simulations.completed"

    request: MissionCreate
    particles_key: str
    particles_total: int
    particles_active: int
    particles_stranded: int
    forcing: list[ForcingUsed]
    shard: Shard | None = Field(
        default=None,
        description="Set for one shard's trajectories; postprocess merges the shards once "
        "every one is simulated. Keyed by the mission, so one postprocess lane sees them all.",
    )


class ResultsReadyV1(EventData):
    ce_type: ClassVar[str] = "driftline.results.ready.v1"
    topic: ClassVar[str] = "results.ready"

    request: MissionCreate
    artifacts: list[ArtifactRef]
    summary: MissionSummary


class MissionCompletedV1(EventData):
    """Public: the answer. Downstream consumers need nothing else."""

    ce_type: ClassVar[str] = "driftline.mission.completed.v1"
    topic: ClassVar[str] = "missions.completed"

    name: str
    external_ref: str | None = None
    completed_at: datetime
    artifacts: list[ArtifactRef]
    summary: MissionSummary


class MissionFailedV1(EventData):
    """Public: the mission cannot be answered, with a machine code and a sentence."""

    ce_type: ClassVar[str] = "driftline.mission.failed.v1"
    topic: ClassVar[str] = "missions.failed"

    stage: str
    reason: str
    detail: str
    failed_at: datetime


class MissionStatusV1(EventData):
    """Public: every state change of a mission."""

    ce_type: ClassVar[str] = "driftline.mission.status.v1"
    topic: ClassVar[str] = "missions.status"

    status: MissionStatus
    stage: str
    progress: float
    detail: str | None = None
    at: datetime
    extra: dict[str, Any] | None = None


class PlanRequestedV1(EventData):
    """A search plan was asked for (with no units: the map updated after a search)."""

    ce_type: ClassVar[str] = "driftline.plan.requested.v1"
    topic: ClassVar[str] = "plans.requested"

    plan_id: uuid.UUID
    request: PlanCreate
    object_type: str
    title: str
    particles_key: str
    searches: list[SearchRecord] = Field(
        default_factory=list, description="Every search recorded when the plan was asked for."
    )


class PlanCompletedV1(EventData):
    """Public: a search plan is ready: areas per unit, POS, and its products."""

    ce_type: ClassVar[str] = "driftline.plan.completed.v1"
    topic: ClassVar[str] = "plans.completed"

    plan_id: uuid.UUID
    completed_at: datetime
    summary: PlanSummary
    artifacts: list[ArtifactRef]


EVENT_TYPES: tuple[type[EventData], ...] = (
    MissionRequestedV1,
    MissionValidatedV1,
    ForcingReadyV1,
    SimulationCompletedV1,
    ResultsReadyV1,
    MissionCompletedV1,
    MissionFailedV1,
    MissionStatusV1,
    PlanRequestedV1,
    PlanCompletedV1,
)

EVENTS_BY_TYPE: dict[str, type[EventData]] = {cls.ce_type: cls for cls in EVENT_TYPES}
