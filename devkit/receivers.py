"""Webhook receivers on loopback: http.server in a thread, recording what arrives.

`mode` decides the answer: "ok" (200), "flaky" (500 on every other request, starting with
the first), "error" (always 500), "slow" (answers after `delay` seconds), "redirect" (302 to
`location`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    def __init__(self, mode: str = "ok", *, delay: float = 3.0, location: str = "") -> None:
        self.mode = mode
        self.location = location
        self.delay = delay
        self.requests: list[dict] = []  # every request, failed ones included
        self.accepted: list[dict] = []  # the ones answered 2xx
        self._count = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                record = {"headers": dict(self.headers), "body": body}
                with receiver._lock:
                    receiver._count += 1
                    n = receiver._count
                    receiver.requests.append(record)
                fail = receiver.mode == "error" or (receiver.mode == "flaky" and n % 2 == 1)
                if receiver.mode == "slow":
                    time.sleep(receiver.delay)
                if receiver.mode == "redirect":
                    self.send_response(302)
                    self.send_header("Location", receiver.location)
                    self.end_headers()
                    return
                try:
                    self.send_response(500 if fail else 200)
                    self.end_headers()
                    self.wfile.write(b"nope" if fail else b"ok")
                except OSError:
                    return
                if not fail:
                    with receiver._lock:
                        receiver.accepted.append(record)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def json_bodies(self) -> list[dict]:
        with self._lock:
            return [json.loads(r["body"]) for r in self.accepted]


def signature_valid(record: dict, secret: str, *, max_age: int = 300) -> bool:
    """What a receiver does: recompute the HMAC over "<t>.<body>" and check the age."""
    header = record["headers"].get("X-Breakglass-Signature", "")
    parts = dict(p.split("=", 1) for p in header.split(","))
    expected = hmac.new(
        secret.encode(), parts["t"].encode() + b"." + record["body"], hashlib.sha256
    ).hexdigest()
    fresh = abs(time.time() - int(parts["t"])) <= max_age
    return fresh and hmac.compare_digest(expected, parts["v1"])
