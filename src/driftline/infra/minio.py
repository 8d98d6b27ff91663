"""MinIO (S3), built from the Go module proxy with the machine's Go toolchain.

The binary is built once into `<infra_dir>/cache/minio-<version>/minio` (about three
minutes cold on two cores; Go's own build cache makes later builds fast).
"""

from __future__ import annotations

import os
import shutil
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from driftline.errors import InfraError
from driftline.infra.process import ServiceState, read_pid, run, spawn, stop_pid, wait_until

# Pinned for reproducible builds: the module version `go install ...@latest` resolved.
MINIO_VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"


@dataclass(frozen=True)
class Minio:
    infra_dir: Path
    port: int
    access_key: str
    secret_key: str
    bucket: str
    cache_dir: Path | None = None  # the built binary; default `<infra_dir>/cache`

    @property
    def home(self) -> Path:
        return self.infra_dir / "minio"

    @property
    def binary(self) -> Path:
        cache = self.cache_dir or self.infra_dir / "cache"
        return cache / f"minio-{MINIO_VERSION}" / "minio"

    @property
    def pid_file(self) -> Path:
        return self.home / "minio.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "minio.log"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ensure_binary(self) -> None:
        if self.binary.exists():
            return
        if shutil.which("go") is None:
            raise InfraError("MinIO is built from source and needs the Go toolchain (`go`)")
        print(
            f"building MinIO {MINIO_VERSION} from the Go module proxy (first time only, "
            "about 3 minutes)...",
            file=sys.stderr,
            flush=True,
        )
        self.binary.parent.mkdir(parents=True, exist_ok=True)
        run(
            ["go", "install", f"github.com/minio/minio@{MINIO_VERSION}"],
            what="building MinIO",
            timeout_s=1800,
            env={**os.environ, "GOBIN": str(self.binary.parent), "CGO_ENABLED": "0"},
        )

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint}/minio/health/live", timeout=1) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def start(self, *, timeout_s: float = 60) -> None:
        self.ensure_binary()
        if read_pid(self.pid_file) is None:
            (self.home / "data").mkdir(parents=True, exist_ok=True)
            spawn(
                [
                    str(self.binary),
                    "server",
                    str(self.home / "data"),
                    "--address",
                    f"127.0.0.1:{self.port}",
                    "--console-address",
                    f"127.0.0.1:{self.port + 1}",
                    "--quiet",
                ],
                log_file=self.log_file,
                pid_file=self.pid_file,
                env={
                    "MINIO_ROOT_USER": self.access_key,
                    "MINIO_ROOT_PASSWORD": self.secret_key,
                    "MINIO_BROWSER": "off",
                    "MINIO_UPDATE": "off",
                    # Metrics on loopback without a token: the soak reads the bucket's
                    # object count there instead of listing a million keys.
                    "MINIO_PROMETHEUS_AUTH_TYPE": "public",
                    # The background scanner walks every object again and again (usage,
                    # lifecycle, healing); at MinIO's default speed its CPU grew from 0.05
                    # to 0.13 cores while the soak's bucket grew, which the pipeline's
                    # latency paid for on a busy machine. Lifecycle rules here count in
                    # days, and the API answers 410 by age, so a slow walk costs nothing.
                    "MINIO_SCANNER_SPEED": os.environ.get("MINIO_SCANNER_SPEED", "slowest"),
                },
            )
        wait_until(
            self.healthy,
            timeout_s=timeout_s,
            what="MinIO",
            log_file=self.log_file,
            pid_file=self.pid_file,
        )

    def stop(self) -> bool:
        return stop_pid(self.pid_file)

    def state(self) -> ServiceState:
        return ServiceState(
            name="minio",
            address=f"127.0.0.1:{self.port}",
            pid=read_pid(self.pid_file),
            healthy=self.healthy(),
        )
