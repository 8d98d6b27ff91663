"""The 85 OpenDrift Leeway object categories, shipped as data (`leeway_object_types.json`):
key, id, description and leeway coefficients, searchable by words.

The API validates and lists object types from this table without importing OpenDrift
(a cold import costs ~10 s). `tests/unit/test_object_types.py` checks that the table
equals OpenDrift's own list, so an OpenDrift upgrade that changes it cannot go unseen;
`python -m driftline.contracts.object_types` regenerates it from the installed OpenDrift.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

DATA_FILE = "leeway_object_types.json"
#: Where a coordinator finds the valid values; quoted by every refusal.
LISTING_HINT = "GET /v1/object-types lists the valid keys and ids"


class LeewayCoefficients(BaseModel):
    """How the object moves relative to the wind (Allen & Plourde, as in OpenDrift's
    OBJECTPROP.DAT): leeway in cm/s = slope x U10 (m/s) + offset, with the given standard
    deviation; downwind, and crosswind to the right and to the left of downwind."""

    model_config = ConfigDict(frozen=True)

    downwind_slope: float = Field(description="% of the 10 m wind speed.")
    downwind_offset_cm_s: float
    downwind_std_cm_s: float
    crosswind_right_slope: float = Field(description="% of the 10 m wind speed.")
    crosswind_right_offset_cm_s: float
    crosswind_right_std_cm_s: float
    crosswind_left_slope: float = Field(description="% of the 10 m wind speed.")
    crosswind_left_offset_cm_s: float
    crosswind_left_std_cm_s: float

    @classmethod
    def of(cls, numbers: tuple[float, ...]) -> LeewayCoefficients:
        """From OBJECTPROP.DAT's nine numbers, in its order."""
        return cls(**dict(zip(cls.model_fields, numbers, strict=True)))


class ObjectType(BaseModel):
    """One Leeway category: what a coordinator picks for the drifting object."""

    model_config = ConfigDict(frozen=True)

    key: str = Field(description="OpenDrift Leeway key, e.g. LIFE-RAFT-DB-10.")
    id: int = Field(description="OpenDrift Leeway numeric id (1-based).")
    description: str
    leeway: LeewayCoefficients

    def matches(self, words: Sequence[str]) -> bool:
        """Every word is in the key or the description (any case), or is the id."""
        text = f"{self.key} {self.description}".lower()
        return all(word.lower() in text or word == str(self.id) for word in words)


@lru_cache(maxsize=1)
def object_types() -> tuple[ObjectType, ...]:
    """Every category, in OpenDrift's order (by id)."""
    text = (resources.files("driftline.contracts") / DATA_FILE).read_text(encoding="utf-8")
    return tuple(ObjectType.model_validate(entry) for entry in json.loads(text))


@lru_cache(maxsize=1)
def _by_key() -> dict[str, ObjectType]:
    return {category.key.lower(): category for category in object_types()}


@lru_cache(maxsize=1)
def _by_id() -> dict[int, ObjectType]:
    return {category.id: category for category in object_types()}


def find_object_type(value: str | int) -> ObjectType | None:
    """The category for a key (case-insensitive) or a numeric id (int or digits), or None."""
    if isinstance(value, bool):  # a JSON `true` is not the id 1
        return None
    if isinstance(value, int):
        return _by_id().get(value)
    text = value.strip()
    if text.isascii() and text.isdigit():
        return _by_id().get(int(text))
    return _by_key().get(text.lower())


def search_object_types(words: Sequence[str]) -> list[ObjectType]:
    """The categories matching every word (`ObjectType.matches`); all of them for none.

    A single argument holding spaces ("life raft") counts as its words.
    """
    split = [part for word in words for part in word.split()]
    return [category for category in object_types() if category.matches(split)]


def similar_keys(value: str, limit: int = 5) -> list[str]:
    """Keys sharing the start of `value`, to suggest after a typo."""
    stem = value.strip().lower()[:4]
    if not stem:
        return []
    return [c.key for c in object_types() if stem in c.key.lower()][:limit]


def write_table(path: Path) -> None:
    """Write the table from the installed OpenDrift (imports it: slow)."""
    from driftline.simulation.leeway import read_opendrift_categories

    rows = [
        {
            "key": c.key,
            "id": c.id,
            "description": c.description,
            "leeway": LeewayCoefficients.of(c.coefficients).model_dump(),
        }
        for c in read_opendrift_categories()
    ]
    path.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write_table(Path(__file__).with_name(DATA_FILE))
