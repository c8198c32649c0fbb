"""`manage.py runserver` as a person starts it, on a private loopback port, with what it
prints to its terminal captured: for tests of what the operator sees there."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from devkit.workers import worker_env
from tests.integrations.hosts import free_port, stop, wait_for_port

ROOT = Path(__file__).resolve().parents[2]


class Server:
    def __init__(self, url: str):
        self.url = url
        self.stderr = ""  # filled in once the server has stopped

    def get(self, path: str, *, session: str = "", cookie_name: str = "sessionid") -> int:
        """GET a page; the status code (errors included)."""
        headers = {"Cookie": f"{cookie_name}={session}"} if session else {}
        request = urllib.request.Request(f"{self.url}{path}", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    def fetch(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"{self.url}{path}", timeout=30) as response:  # noqa: S310
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()


@contextmanager
def runserver(**env: str):
    """Run the console against the test database (or what `env` says); on exit the server
    is stopped and `server.stderr` holds everything it printed there."""
    port = free_port()
    environment = worker_env(**env)
    environment.pop("BREAKGLASS_TEST_REAL_BROKER")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    server = Server(f"http://127.0.0.1:{port}")
    try:
        wait_for_port(port, process=process, timeout=60)
        yield server
    finally:
        stop(process)
        server.stderr = process.stderr.read()
