"""One module per pipeline stage; each exposes a plain async stage function and its `STAGE`."""

from __future__ import annotations

from typing import Any

from driftline.runtime.stage import Stage
from workers import fetch_forcing, notify, plan, postprocess, simulate, validate

STAGE_REGISTRY: dict[str, Stage[Any]] = {
    stage.name: stage
    for stage in (
        validate.STAGE,
        fetch_forcing.STAGE,
        simulate.STAGE,
        postprocess.STAGE,
        notify.STAGE,
        plan.STAGE,
    )
}
