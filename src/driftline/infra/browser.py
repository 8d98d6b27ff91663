"""Chromium from Debian's packages, for the console's browser tests.

The tests drive it with Playwright for Python; Playwright's own browser download is
never used (it fetches a build from outside the package registries), so the page runs
in the distribution's `chromium`, installed here when missing, like PostgreSQL is.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from driftline.errors import InfraError
from driftline.infra.process import apt_install

CHROMIUM = Path("/usr/bin/chromium")
#: Headless, offline and quiet: no GPU, no QUIC, no background fetches of any kind.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def find_chromium() -> Path | None:
    if CHROMIUM.exists():
        return CHROMIUM
    found = shutil.which("chromium")
    return Path(found) if found else None


def ensure_chromium() -> Path:
    """Chromium's executable, installed from Debian's packages when missing."""
    executable = find_chromium()
    if executable is None:
        apt_install("chromium", what="Chromium")
        executable = find_chromium()
    if executable is None:
        raise InfraError("Chromium not found after installing it")
    return executable
