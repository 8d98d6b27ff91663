"""The README's by-hand session, run verbatim in bash against the real services.

The block between `<!-- by-hand:start -->` and `<!-- by-hand:end -->` is executed as it
is, from a folder that has the repository's `.venv` and `examples/`, with this test's
own topic prefix, database, bucket and API port in DRIFTLINE_* variables. The mission
must complete, and everything the block started must be gone afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
from pathlib import Path

from driftline.infra.process import port_open
from driftline.settings import PROJECT_ROOT, Settings
from tests.pipeline import free_port, settings_env

BLOCK = re.compile(r"<!-- by-hand:start -->\n```bash\n(.*?)```\n<!-- by-hand:end -->", re.S)


def readme_block() -> str:
    found = BLOCK.search((PROJECT_ROOT / "README.md").read_text())
    assert found is not None, "README.md has no by-hand block between its markers"
    return found.group(1)


def processes_of(prefix: str) -> list[int]:
    """Pids of Driftline processes running with this test's topic prefix."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"DRIFTLINE_TOPIC_PREFIX={prefix}".encode() in environ:
            pids.append(int(proc.name))
    return pids


def test_block_is_plain_commands() -> None:
    for line in readme_block().splitlines():
        assert line and not line.startswith("#"), f"not a command: {line!r}"


async def test_readme_by_hand_session_runs_as_written(settings: Settings, tmp_path: Path) -> None:
    workdir = tmp_path / "checkout"
    workdir.mkdir()
    for name in (".venv", "examples"):
        (workdir / name).symlink_to(PROJECT_ROOT / name)
    port = free_port()
    env = {
        **settings_env(settings),
        "DRIFTLINE_API_PORT": str(port),
        "DRIFTLINE_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "COLUMNS": "120",
    }
    env.pop("DRIFTLINE_FORCING_CATALOG", None)  # the block makes its own
    log = tmp_path / "session.log"
    with log.open("wb") as out:
        bash = await asyncio.create_subprocess_exec(
            "bash",
            "-euo",
            "pipefail",
            "-c",
            readme_block(),
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            code = await asyncio.wait_for(bash.wait(), 600)
        finally:
            if bash.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(bash.pid, signal.SIGTERM)
                await asyncio.wait_for(bash.wait(), 120)
            leftovers = await _gone(settings.topic_prefix, timeout_s=90)
    text = log.read_text(errors="replace")
    assert code == 0, text
    assert "accepted: mission" in text and "completed (notify)" in text, text
    assert "ready: API at" in text and "containment areas" in text, text
    assert "Traceback" not in text, text
    assert leftovers == [], f"left running: {leftovers}\n{text}"
    assert not port_open("127.0.0.1", port), "the API still listens"


async def _gone(prefix: str, timeout_s: float) -> list[int]:
    """Wait for the session's processes to end; kill and return any that did not."""
    deadline = time.monotonic() + timeout_s
    pids = processes_of(prefix)
    while pids and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        pids = processes_of(prefix)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return pids
