"""A webhook receiver for tests: HTTP(S) on a loopback address, answering scripted statuses.

Runs in the test's event loop (plain asyncio streams), records every request with the
TLS server name it was reached under, and refuses to bind anywhere but loopback.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from dataclasses import dataclass, field
from types import TracebackType


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it."""

    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    at: float  # loop time


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)


class LoopbackReceiver:
    """Answers `answers` in order (the last one repeats); `answers` may be changed live."""

    def __init__(
        self,
        answers: list[int | Answer],
        *,
        host: str = "127.0.0.1",
        tls: ssl.SSLContext | None = None,
    ) -> None:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError("test receivers listen on loopback only")
        self.answers = [a if isinstance(a, Answer) else Answer(a) for a in answers]
        self.host = host
        self.received: list[Received] = []
        self.server_names: list[str | None] = []
        self._tls = tls
        self._server: asyncio.Server | None = None
        self.port = 0
        if tls is not None:
            tls.sni_callback = self._on_server_name

    def _on_server_name(self, _: ssl.SSLObject, name: str | None, __: ssl.SSLContext) -> None:
        self.server_names.append(name)

    async def __aenter__(self) -> LoopbackReceiver:
        self._server = await asyncio.start_server(self._serve, self.host, 0, ssl=self._tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def url(self, path: str = "/hook", *, host: str | None = None) -> str:
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://{host or self.host}:{self.port}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            request_line, *lines = head.split("\r\n")
            method, path, _ = request_line.split(" ", 2)
            headers = {}
            for line in lines:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            loop = asyncio.get_running_loop()
            self.received.append(Received(method, path, headers, body, loop.time()))
            answer = self.answers[min(len(self.received), len(self.answers)) - 1]
            extra = "".join(f"{k}: {v}\r\n" for k, v in answer.headers.items())
            writer.write(
                f"HTTP/1.1 {answer.status} Scripted\r\ncontent-length: 0\r\n"
                f"connection: close\r\n{extra}\r\n".encode("latin-1")
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()
