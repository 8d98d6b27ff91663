"""PostgreSQL from Debian's packages, with its data under the infra folder.

PostgreSQL refuses to run as root, so initdb and the server run as the `postgres` OS
user that Debian's package creates. It listens on 127.0.0.1 only, with its unix socket
inside the infra folder so it never clashes with a system instance.
"""

from __future__ import annotations

import glob
import hashlib
import os
import pwd
import subprocess
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from driftline.errors import InfraError
from driftline.infra.process import ServiceState, apt_install, port_open, read_pid, run, wait_until

ROLE = "driftline"
PASSWORD = "driftline"
DATABASE = "driftline"


def _postgres_can_enter(folder: Path) -> bool:
    """Whether the `postgres` OS user can traverse to `folder` (it runs the server)."""
    if os.geteuid() != 0:
        return True
    folder.mkdir(parents=True, exist_ok=True)
    probe = subprocess.run(
        ["runuser", "-u", "postgres", "--", "test", "-x", str(folder)],
        capture_output=True,
        check=False,
        timeout=10,
    )
    return probe.returncode == 0


def find_bindir() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def ensure_installed() -> Path:
    """PostgreSQL's server binaries, installed from Debian's packages when missing."""
    bindir = find_bindir()
    if bindir is None:
        apt_install("postgresql", what="PostgreSQL")
        bindir = find_bindir()
    if bindir is None:
        raise InfraError("PostgreSQL binaries not found after installing them")
    return bindir


@dataclass(frozen=True)
class Postgres:
    infra_dir: Path
    port: int

    @cached_property
    def home(self) -> Path:
        """`<infra_dir>/postgres`, unless the `postgres` user cannot reach the infra folder
        (a clone under a private home directory): then the server's own home."""
        preferred = self.infra_dir / "postgres"
        if preferred.exists() or _postgres_can_enter(self.infra_dir):
            return preferred
        digest = hashlib.sha1(str(self.infra_dir).encode()).hexdigest()[:10]
        return Path("/var/lib/postgresql") / f"driftline-{digest}"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def socket_dir(self) -> Path:
        return self.home / "run"

    @property
    def log_file(self) -> Path:
        return self.home / "postgres.log"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "postmaster.pid"

    @property
    def database_url(self) -> str:
        return f"postgresql+asyncpg://{ROLE}:{PASSWORD}@127.0.0.1:{self.port}/{DATABASE}"

    def _as_postgres(self, argv: list[str], what: str) -> str:
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        return run(argv, what=what, cwd="/")

    def _own(self, path: Path) -> None:
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def start(self, *, timeout_s: float = 60) -> None:
        bindir = ensure_installed()
        self.home.mkdir(parents=True, exist_ok=True)
        for path in (self.home, self.socket_dir):
            path.mkdir(parents=True, exist_ok=True)
            self._own(path)
        if not (self.data_dir / "PG_VERSION").exists():
            self._as_postgres(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ],
                "initdb",
            )
            self._allow_local_trust()
        if self.pid() is None:
            self.log_file.touch()
            self._own(self.log_file)
            options = (
                f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.socket_dir} "
                "-c max_connections=300 -c fsync=on -c shared_buffers=128MB"
            )
            self._as_postgres(
                [
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.log_file),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    str(int(timeout_s)),
                    "start",
                ],
                "starting PostgreSQL",
            )
        wait_until(
            lambda: port_open("127.0.0.1", self.port),
            timeout_s=timeout_s,
            what="PostgreSQL",
            log_file=self.log_file,
        )
        self._ensure_role_and_database(bindir)

    def _allow_local_trust(self) -> None:
        # The driftline role logs in with a password over TCP; the superuser only over the
        # socket inside the infra folder.
        hba = self.data_dir / "pg_hba.conf"
        hba.write_text(
            "local all postgres trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
            "host all all ::1/128 scram-sha-256\n"
        )

    def psql(self, sql: str, database: str = "postgres") -> str:
        bindir = ensure_installed()
        return self._as_postgres(
            [
                str(bindir / "psql"),
                "-h",
                str(self.socket_dir),
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-tAc",
                sql,
            ],
            "psql",
        )

    def _ensure_role_and_database(self, bindir: Path) -> None:
        if not self.psql(f"SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}'").strip():
            self.psql(f"CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD '{PASSWORD}'")
        if not self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'").strip():
            self.psql(f"CREATE DATABASE {DATABASE} OWNER {ROLE}")

    def pid(self) -> int | None:
        try:
            first = self.pid_file.read_text().splitlines()[0]
        except (OSError, IndexError):
            return None
        pid_path = self.home / "postgres.pid"
        pid_path.write_text(first)
        return read_pid(pid_path)

    def stop(self) -> bool:
        if self.pid() is None:
            return False
        bindir = ensure_installed()
        self._as_postgres(
            [str(bindir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"],
            "stopping PostgreSQL",
        )
        return True

    def state(self) -> ServiceState:
        return ServiceState(
            name="postgres",
            address=f"127.0.0.1:{self.port}",
            pid=self.pid(),
            healthy=port_open("127.0.0.1", self.port),
        )
