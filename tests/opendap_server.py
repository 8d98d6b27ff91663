"""A real OPeNDAP (DAP2) server for tests: pydap's protocol handler over CF files, on 127.0.0.1.

Run as `python -m tests.opendap_server LOG_FILE FILE...`; it prints the port it bound,
then serves until killed, each file at `/<file name>` (`.dds`, `.das`, `.dods` with
constraint expressions, as THREDDS and Hyrax do). Each request is appended to LOG_FILE
as one JSON line (`path`, `query`, `bytes` of the response body), so a test can say
exactly what crossed the wire.

It runs in its own process: netCDF-C (the client under xarray) and the server's own
netCDF reads must not share one process's HDF5 library. pydap's stock NetCDF handler
(3.5.9, the last release for Python 3.11) cannot serve a hyperslab (pydap issue #130:
it reshapes every slice to the whole variable's shape), so the variables it declares
are given data objects that slice the file properly; the DAP protocol itself (DDS, DAS,
DODS encoding, constraint parsing) is pydap's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import numpy as np
from netCDF4 import Dataset
from pydap.handlers.netcdf_handler import NetCDFHandler
from pydap.model import BaseType

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _FileSlice:
    """One variable of a NetCDF file, read hyperslab by hyperslab on request."""

    def __init__(self, path: str, name: str, shape: tuple[int, ...], dtype: np.dtype[Any]) -> None:
        self.path, self.name, self.shape, self.dtype = path, name, shape, dtype
        self.ndim = len(shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> np.ndarray[Any, Any]:
        with Dataset(self.path) as source:
            source.set_auto_scale(False)
            return np.asarray(source[self.name][key]).astype(self.dtype)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray[Any, Any]:
        return self[...]


def file_handler(path: Path) -> NetCDFHandler:
    """pydap's handler for `path`, its variables backed by `_FileSlice`."""
    handler = NetCDFHandler(str(path))
    for variable in handler.dataset.children():
        if isinstance(variable, BaseType):
            lazy = variable.data
            variable.data = _FileSlice(str(path), variable.name, lazy.shape, lazy.dtype)
    return handler


class CountingRouter:
    """WSGI app: `/<file name>.<response>` to that file's handler; bytes logged per request."""

    def __init__(self, files: list[Path], log_path: Path) -> None:
        self._handlers = {path.name: file_handler(path) for path in files}
        self._log_path = log_path

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterator[bytes]:
        path = environ.get("PATH_INFO", "")
        name = path.lstrip("/").rsplit(".", 1)[0]
        handler = self._handlers.get(name)
        sent = 0
        try:
            if handler is None:
                start_response("404 Not Found", [("Content-Type", "text/plain")])
                body: Iterable[bytes] = [b"no such dataset\n"]
            else:
                body = handler(environ, start_response)
            for chunk in body:
                sent += len(chunk)
                yield chunk
        finally:
            line = {"path": path, "query": environ.get("QUERY_STRING", ""), "bytes": sent}
            with self._log_path.open("a") as log:
                log.write(json.dumps(line) + "\n")


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@dataclass(frozen=True)
class RunningServer:
    """A started server: its base URL and the log of what it sent."""

    base_url: str
    log_path: Path

    def url(self, file: Path) -> str:
        return f"{self.base_url}/{file.name}"

    def requests(self) -> list[dict[str, Any]]:
        if not self.log_path.exists():
            return []
        return [json.loads(line) for line in self.log_path.read_text().splitlines()]

    def bytes_sent(self) -> int:
        return sum(int(r["bytes"]) for r in self.requests())

    def forget(self) -> None:
        """Start counting afresh."""
        self.log_path.unlink(missing_ok=True)


@contextmanager
def opendap_server(files: list[Path], log_path: Path) -> Iterator[RunningServer]:
    """Serve `files` over OPeNDAP on 127.0.0.1 from a child process, until the block ends."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.opendap_server", str(log_path), *map(str, files)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],  # `-m tests.…` resolves from the repo root
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield RunningServer(f"http://127.0.0.1:{port}", log_path)
    finally:
        process.terminate()
        process.wait(timeout=10)


def main(log_file: str, *files: str) -> None:
    app = CountingRouter([Path(f) for f in files], Path(log_file))
    with make_server("127.0.0.1", 0, app, handler_class=_QuietHandler) as server:
        print(server.server_port, flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main(*sys.argv[1:])
