"""The shipped Leeway table equals OpenDrift's own (coefficients too), lookups by key or id,
and the search by words in the CLI and the API."""

from __future__ import annotations

import json

import httpx
from typer.testing import CliRunner

from driftline.api.app import create_app
from driftline.cli.main import app
from driftline.contracts.object_types import (
    LeewayCoefficients,
    find_object_type,
    object_types,
    search_object_types,
    similar_keys,
)
from driftline.settings import Settings
from driftline.simulation.leeway import read_opendrift_categories, resolve_object_type


def test_shipped_table_equals_opendrift() -> None:
    """Fails after an OpenDrift upgrade that changes the categories: regenerate the table
    with `python -m driftline.contracts.object_types`."""
    from_opendrift = [
        (c.key, c.id, c.description, LeewayCoefficients.of(c.coefficients))
        for c in read_opendrift_categories()
    ]
    shipped = [(c.key, c.id, c.description, c.leeway) for c in object_types()]
    assert shipped == from_opendrift
    assert len(shipped) == 85


def test_coefficients_are_the_ones_opendrift_drifts_with() -> None:
    """Read from a Leeway model itself, not from the file the table was made from."""
    from opendrift.models.leeway import Leeway

    model = Leeway(loglevel=50)
    for category in object_types():
        props = model.leewayprop[category.id]
        lw = category.leeway
        assert props["OBJKEY"] == category.key
        assert (props["DWSLOPE"], props["DWOFFSET"], props["DWSTD"]) == (
            lw.downwind_slope,
            lw.downwind_offset_cm_s,
            lw.downwind_std_cm_s,
        )
        assert (props["CWRSLOPE"], props["CWLSLOPE"], props["CWLSTD"]) == (
            lw.crosswind_right_slope,
            lw.crosswind_left_slope,
            lw.crosswind_left_std_cm_s,
        )


def test_lookup_by_key_in_any_case_or_by_id() -> None:
    raft = find_object_type("LIFE-RAFT-DB-10")
    assert raft is not None and raft.id == 7
    assert find_object_type("life-raft-db-10") == raft
    assert find_object_type(7) == raft and find_object_type(" 7 ") == raft
    assert resolve_object_type("life-raft-db-10").key == "LIFE-RAFT-DB-10"


def test_what_is_not_a_category() -> None:
    for value in ("NOT-A-TYPE", 9999, 0, -1, "", "²", "LIFE-RAFT", True, False):
        assert find_object_type(value) is None, value
    assert "LIFE-RAFT-DB-10" in similar_keys("LIFE-RAFT")
    assert similar_keys("") == []


def test_search_needs_every_word_in_any_case() -> None:
    rafts = search_object_types(["life", "RAFT"])
    assert rafts and all("raft" in f"{c.key} {c.description}".lower() for c in rafts)
    assert "LIFE-RAFT-DB-10" in [c.key for c in rafts]
    assert search_object_types(["life raft"]) == rafts, "one argument with spaces"
    narrower = search_object_types(["life", "raft", "canopy"])
    assert narrower and set(narrower) < set(rafts)
    assert next(c.key for c in search_object_types(["7"])) == "LIFE-RAFT-DB-10"
    assert search_object_types(["zeppelin"]) == []
    assert search_object_types([]) == list(object_types())


def test_cli_lists_and_searches_the_object_types() -> None:
    result = CliRunner().invoke(app, ["object-types", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert listed == [c.model_dump() for c in object_types()]
    table = CliRunner().invoke(app, ["object-types"], env={"COLUMNS": "250"})
    assert "LIFE-RAFT-DB-10" in table.output and "85" in table.output
    found = CliRunner().invoke(app, ["object-types", "person", "water", "--json"])
    assert found.exit_code == 0, found.output
    keys = [c["key"] for c in json.loads(found.output)]
    assert keys == [c.key for c in search_object_types(["person", "water"])]
    assert "PIW-1" in keys and not any(k.startswith("LIFE-RAFT") for k in keys)
    assert json.loads(found.output)[0]["leeway"]["downwind_slope"] == 0.96
    shown = CliRunner().invoke(app, ["object-types", "sailboat"], env={"COLUMNS": "250"})
    assert shown.exit_code == 0 and "downwind" in shown.output
    nothing = CliRunner().invoke(app, ["object-types", "zeppelin"])
    assert nothing.exit_code == 1 and "no object type matches" in nothing.output


async def test_api_lists_and_searches_the_object_types() -> None:
    transport = httpx.ASGITransport(app=create_app(Settings()))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        everything = await client.get("/v1/object-types")
        rafts = await client.get("/v1/object-types", params={"q": "life raft"})
        none = await client.get("/v1/object-types", params={"q": "zeppelin"})
    assert everything.status_code == 200 and len(everything.json()) == 85
    assert everything.json()[6]["leeway"]["downwind_slope"] == 3.52
    assert rafts.status_code == 200
    assert [c["key"] for c in rafts.json()] == [c.key for c in search_object_types(["life raft"])]
    assert none.status_code == 200 and none.json() == []
