"""The shipped Leeway table equals OpenDrift's own, and lookups by key or id."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from driftline.cli.main import app
from driftline.contracts.object_types import find_object_type, object_types, similar_keys
from driftline.simulation.leeway import read_opendrift_categories, resolve_object_type


def test_shipped_table_equals_opendrift() -> None:
    """Fails after an OpenDrift upgrade that changes the categories: regenerate the table
    with `python -m driftline.contracts.object_types`."""
    from_opendrift = [(c.key, c.id, c.description) for c in read_opendrift_categories()]
    shipped = [(c.key, c.id, c.description) for c in object_types()]
    assert shipped == from_opendrift
    assert len(shipped) == 85


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


def test_cli_lists_the_object_types() -> None:
    result = CliRunner().invoke(app, ["object-types", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert listed == [c.model_dump() for c in object_types()]
    table = CliRunner().invoke(app, ["object-types"], env={"COLUMNS": "200"})
    assert "LIFE-RAFT-DB-10" in table.output and "85" in table.output
