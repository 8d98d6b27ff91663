"""The coordinator's console: a web page served by the API at `/console`.

The page itself is static (`static/`: HTML, JavaScript, CSS and the vendored Leaflet, no
build step); this package also owns what the page needs beyond the REST API: the
offline basemap (`coastline`: GSHHG land for a view) and the mission layers a browser
cannot read from NetCDF (`layers`: particles per time and the density grid).
"""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
