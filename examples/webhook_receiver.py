"""A receiver of Driftline's signed webhooks (Standard Webhooks): a template for integrators.

Driftline POSTs `{"type": "driftline.mission.completed.v1", "timestamp": ..., "data":
{...}}` to a mission's `callback_url` when it completes, with `webhook-id`,
`webhook-timestamp` and `webhook-signature` headers signed with the tenant's secret
(`driftline keys create` prints it). This receiver:

* **verifies** the signature and the timestamp (within 5 minutes) with the
  `standardwebhooks` package, and answers 401 when they do not verify;
* **answers at once** (204) and does the work in a background thread: a slow answer is
  a failed delivery, and Driftline would send it again;
* **de-duplicates by `webhook-id`**: a retried delivery keeps its id, so the same id is
  acknowledged again and not handled twice. Keep the ids for longer than the retry
  schedule (about 18 hours), in your database rather than in memory as here.

Run it (a callback URL must be allow-listed by the operator if it is not public):

    DRIFTLINE_WEBHOOK_SECRET=whsec_... python examples/webhook_receiver.py --port 8765
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

MAX_BODY = 1 << 20  # a completion is a few kilobytes; refuse anything absurd


class WebhookReceiver(ThreadingHTTPServer):
    """Listens on (host, port); calls `handle(payload)` once per verified webhook-id."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        secret: str,
        handle: Callable[[dict[str, Any]], None],
    ) -> None:
        super().__init__(address, _Handler)
        self.webhook = Webhook(secret)
        self.handle = handle
        self.seen: set[str] = set()
        self.seen_lock = threading.Lock()
        self.work: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.worker = threading.Thread(target=self._work, name="webhook-worker", daemon=True)
        self.worker.start()

    def first_time(self, webhook_id: str) -> bool:
        with self.seen_lock:
            if webhook_id in self.seen:
                return False
            self.seen.add(webhook_id)
            return True

    def _work(self) -> None:
        while (payload := self.work.get()) is not None:
            try:
                self.handle(payload)
            except Exception as exc:  # one bad payload must not stop the worker
                print(f"handling webhook failed: {exc!r}")

    def server_close(self) -> None:
        self.work.put(None)
        super().server_close()
        self.worker.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    server: WebhookReceiver

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_BODY:
            self._answer(413)
            return
        body = self.rfile.read(length)
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            payload = self.server.webhook.verify(body, headers)
        except WebhookVerificationError:
            self._answer(401)
            return
        if self.server.first_time(headers["webhook-id"]):
            self.server.work.put(payload)
        self._answer(204)  # a duplicate is acknowledged too, so it is not sent again

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet; log what you need in `handle`


def print_completion(payload: dict[str, Any]) -> None:
    """What an integrator would do: here, show the answer."""
    data = payload["data"]
    summary = data["summary"]
    print(
        json.dumps(
            {
                "mission": data["mission_id"],
                "external_ref": data.get("external_ref"),
                "area_90_km2": summary["area_km2"].get("90"),
                "centroid": summary["centroid"],
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    secret = os.environ["DRIFTLINE_WEBHOOK_SECRET"]
    with WebhookReceiver((args.host, args.port), secret, print_completion) as server:
        print(f"listening on http://{args.host}:{args.port}/ (Ctrl-C stops)")
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()


if __name__ == "__main__":
    main()
