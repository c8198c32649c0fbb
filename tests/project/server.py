"""`manage.py runserver` as a person starts it, on a private loopback port, with what it
prints to its terminal captured: for tests of what the operator sees there."""

from __future__ import annotations

import subprocess
import sys
import threading
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

    def get(self, path: str, *, cookie: str = "", **headers: str) -> tuple[int, dict, str]:
        """GET a page: its status, headers and body (errors included)."""
        if cookie:
            headers["Cookie"] = cookie
        request = urllib.request.Request(f"{self.url}{path}", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
                return response.status, dict(response.headers), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read().decode()


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


class TcpProxy:
    """A loopback TCP relay to a real server (here PostgreSQL): `stop()` is the outage,
    closing the listening socket and every relayed connection at once."""

    def __init__(self, host: str, port: int):
        import socket

        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list = []
        self.lock = threading.Lock()

    def start(self) -> TcpProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self) -> None:
        import socket

        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # stopped
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source, sink) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.close()
                except OSError:
                    pass

    def stop(self) -> None:
        import socket

        # shutdown() first: close() alone does not wake a thread blocked in accept(),
        # which would then take one more connection.
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        with self.lock:
            for sock in self.sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                    sock.close()
                except OSError:
                    pass
