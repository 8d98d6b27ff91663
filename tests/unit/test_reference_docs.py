"""docs/api.md and docs/events.md are current with the code, and the README and docs only
link to files in the repository."""

from __future__ import annotations

import re

import pytest

from driftline.reference_docs import (
    example_events,
    rendered_reference_docs,
    replace_regions,
    type_of,
)
from driftline.settings import PROJECT_ROOT

DOCS = PROJECT_ROOT / "docs"
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_generated_docs_are_current() -> None:
    """Fails when an endpoint, a problem type or an event changed without `make docs`."""
    for path, content in rendered_reference_docs(DOCS).items():
        assert path.read_text() == content, f"{path.name} is stale: run `make docs`"


def test_every_event_type_has_an_example_in_the_docs() -> None:
    events = (DOCS / "events.md").read_text()
    for data, _, _ in example_events():
        assert f"ce_type: {data.ce_type}" in events


def test_regions_are_replaced_between_markers_only() -> None:
    text = "intro\n<!-- generated:a -->\nold\n<!-- /generated:a -->\noutro\n"
    assert replace_regions(text, {"a": "new"}) == (
        "intro\n<!-- generated:a -->\nnew\n<!-- /generated:a -->\noutro\n"
    )
    with pytest.raises(KeyError):
        replace_regions(text, {})


def test_types_read_like_a_person_would_say_them() -> None:
    assert type_of({"$ref": "#/components/schemas/Position"}) == "`Position`"
    assert type_of({"anyOf": [{"type": "string", "format": "uri"}, {"type": "null"}]}) == (
        "string (uri) or null"
    )
    assert type_of({"type": "integer", "minimum": 10, "maximum": 50000}) == (
        "integer (>= 10, <= 50000)"
    )
    assert type_of({"type": "array", "items": {"$ref": "#/$defs/ArtifactRef"}}) == (
        "list of `ArtifactRef`"
    )


@pytest.mark.parametrize("name", ["README.md", "docs/api.md", "docs/events.md"])
def test_links_stay_inside_the_repository(name: str) -> None:
    path = PROJECT_ROOT / name
    for target in LINK.findall(path.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        resolved = (path.parent / target).resolve()
        assert resolved.is_relative_to(PROJECT_ROOT), f"{name} links outside: {target}"
        assert resolved.exists(), f"{name} links to a missing file: {target}"
    assert "shared/DESIGN.md" not in path.read_text()
