""".env.example promises every setting: a field added to Settings must be listed there."""

from __future__ import annotations

import re

from driftline.settings import PROJECT_ROOT, Settings


def test_env_example_lists_every_setting() -> None:
    text = (PROJECT_ROOT / ".env.example").read_text()
    listed = {name.lower() for name in re.findall(r"DRIFTLINE_([A-Z0-9_]+)=", text)}
    assert sorted(set(Settings.model_fields) - listed) == []
    assert sorted(listed - set(Settings.model_fields)) == [], "names that are not settings"
