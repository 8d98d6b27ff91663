"""The `copernicusmarine` kind: a Copernicus Marine Service dataset, named by its id.

Recognised and validated so catalogs can list it, but not reachable from here (it needs
the copernicusmarine package, credentials and internet): it reports itself unavailable,
so the catalog skips it and says why when nothing else covers.
"""

from __future__ import annotations

from datetime import datetime
from typing import NoReturn

from driftline.errors import ForcingUnavailable
from driftline.forcing.model import BBox
from driftline.forcing.sources.base import ForcingSource


class CopernicusMarineSource(ForcingSource):
    """A CMEMS dataset id; every access raises ForcingUnavailable."""

    kind = "copernicusmarine"

    def check(self) -> None:
        if not self.config.dataset_id:
            raise self.invalid("needs dataset_id")

    def coverage(self) -> NoReturn:
        raise self._unreachable()

    def subset(self, variable: str, box: BBox, start: datetime, end: datetime) -> NoReturn:
        raise self._unreachable()

    def _unreachable(self) -> ForcingUnavailable:
        return ForcingUnavailable(
            f"source {self.name}: Copernicus Marine is not reachable from here "
            "(needs the copernicusmarine package, credentials and internet)"
        )
