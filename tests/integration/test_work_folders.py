"""Work folders of dead processes are removed; live, foreign and unknown ones are kept."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from driftline.runtime import work_folders


def test_sweep_removes_only_folders_of_processes_that_are_gone(tmp_path: Path) -> None:
    sleeper = subprocess.Popen(["sleep", "60"])
    dead = tmp_path / work_folders.folder_name(sleeper.pid)
    sleeper.kill()
    sleeper.wait()
    (dead / "tmp123").mkdir(parents=True)
    own = tmp_path / work_folders.folder_name()
    own.mkdir()
    start = work_folders.process_start(os.getpid())
    assert start is not None
    reused = tmp_path / own.name.replace(f"-{start}", f"-{start + 1}")  # same pid, other process
    reused.mkdir()
    kept = [tmp_path / "otherhost-1-1", tmp_path / "tmpq8x_ab", tmp_path / "vm-x-1"]
    for folder in kept:
        folder.mkdir()
    (tmp_path / "notes.txt").write_text("not a folder")

    removed = work_folders.sweep(tmp_path)

    assert sorted(removed) == sorted([dead, reused])
    assert own.is_dir() and all(folder.is_dir() for folder in kept)
    assert (tmp_path / "notes.txt").exists()


def test_claim_makes_this_process_folder(tmp_path: Path) -> None:
    own = work_folders.claim(tmp_path / "work")
    assert own.is_dir()
    assert work_folders.owner_alive(own.name) is True
    assert work_folders.sweep(tmp_path / "work") == []
