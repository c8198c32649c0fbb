"""nginx auth_request -> `breakglass serve` (docs/integrations/nginx.md), all real programs.

nginx runs the documented `http` block, the two sidecars run the documented commands from
the single-file verifier under Debian's python3 (without --state), and the upstream is a
loopback HTTP server that records what reached it.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.integrations.hosts import (
    Nginx,
    documented_block,
    documented_commands,
    free_port,
    private_root_directory,
    rewritten,
    stop,
    wait_for_port,
)


class Upstream:
    """The protected application: answers 200 and records the headers it received."""

    def __init__(self):
        self.seen: list[dict] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                upstream.seen.append(dict(self.headers))
                body = f"app saw {self.headers.get('X-Remote-User')}".encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


class Site:
    """nginx + production sidecar + drill probe sidecar + upstream, on loopback."""

    def __init__(self, root: Path, verifier_command: list[str], trust):
        self.root, self.trust = root, trust
        self.conf = trust.install(root / "etc-breakglass")
        self.upstream = Upstream()
        self.sidecar_port, self.probe_port, self.port = free_port(), free_port(), free_port()
        self.sidecars: list[subprocess.Popen] = []
        self.logs: list[Path] = []
        ports = {"127.0.0.1:8081": self.sidecar_port, "127.0.0.1:8082": self.probe_port}
        for number, argv in enumerate(documented_commands("nginx.md")):
            assert argv[:2] == ["breakglass", "serve"], argv
            argv = [
                rewritten(a, {"/etc/breakglass": str(self.conf)})
                if a.startswith("/etc/breakglass")
                else a
                for a in argv
            ]
            argv = [{"payments-admin": "sso"}.get(a, a) for a in argv]
            argv = [f"127.0.0.1:{ports[a]}" if a in ports else a for a in argv]
            log = root / f"sidecar-{number}.log"
            self.logs.append(log)
            process = subprocess.Popen(
                [*verifier_command, *argv[1:]],
                stdout=subprocess.DEVNULL,
                stderr=log.open("wb"),
                env={"PATH": "/usr/bin:/bin"},
            )
            self.sidecars.append(process)
        for process, port in zip(self.sidecars, (self.sidecar_port, self.probe_port), strict=True):
            wait_for_port(port, process=process)
        block = rewritten(
            documented_block("nginx.md", "nginx"),
            {
                "127.0.0.1:9000": f"127.0.0.1:{self.upstream.port}",
                "127.0.0.1:8081": f"127.0.0.1:{self.sidecar_port}",
                "127.0.0.1:8082": f"127.0.0.1:{self.probe_port}",
                "listen 127.0.0.1:8443;": f"listen 127.0.0.1:{self.port};",
            },
        )
        self.nginx = Nginx(root / "nginx", block, port=self.port)

    def get(self, path: str, token: str | None = None) -> tuple[int, dict, str]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = response.read().decode("latin-1")
        connection.close()
        return response.status, dict(response.headers), body

    def put_bundle(self, **bundle) -> None:
        """Replace the bundle file as a sync would: a new file renamed into place."""
        target = self.conf / "bundle.json"
        temporary = self.conf / "bundle.json.new"
        temporary.write_bytes(self.trust.bundle(**bundle))
        os.replace(temporary, target)

    def sidecar_log(self) -> str:
        return "".join(log.read_text(errors="replace") for log in self.logs)

    def close(self) -> None:
        for process in self.sidecars:
            stop(process)
        self.upstream.close()


@pytest.fixture
def site(verifier_command, live_trust):
    root = private_root_directory("breakglass-nginx-")
    (root / "nginx").mkdir()
    site = None
    try:
        site = Site(root, verifier_command, live_trust)
        with site.nginx:
            yield site
    finally:
        if site is not None:
            site.close()
        shutil.rmtree(root, ignore_errors=True)


def test_a_valid_token_reaches_the_upstream_with_the_responder_named(site, live_trust):
    status, _, body = site.get("/admin/users", live_trust.token())
    assert (status, body) == (200, "app saw rita-responder")
    assert "Authorization" not in site.upstream.seen[-1]  # the token stays at the edge


@pytest.mark.parametrize(
    "claims",
    [{"jti": "revoked-at-start-0001"}, {"aud": "vpn"}, {"drill": True}, {"scope": "ssh:login"}],
    ids=["revoked", "wrong_audience", "drill", "missing_scope"],
)
def test_refused_tokens_get_401_and_never_reach_the_upstream(site, live_trust, claims):
    site.put_bundle(version=8, revoked_jti=["revoked-at-start-0001"])
    status, _, _ = site.get("/admin/users", live_trust.token(**claims))
    assert status == 401
    assert site.upstream.seen == []
    assert site.get("/admin/users")[0] == 401  # no token at all


def test_an_older_bundle_put_back_on_disk_does_not_unrevoke(site, live_trust):
    token = live_trust.token(jti="to-be-revoked-0001")
    assert site.get("/admin/", token)[0] == 200
    site.put_bundle(version=8, revoked_jti=["to-be-revoked-0001"])
    assert site.get("/admin/", token)[0] == 401
    site.put_bundle(version=7)  # validly signed, older, without the revocation
    assert site.get("/admin/", token)[0] == 401
    assert "older than the required version 8" in site.sidecar_log()
    assert site.get("/admin/", live_trust.token())[0] == 200  # still serving version 8


def test_a_drill_token_passes_the_probe_location_only(site, live_trust):
    drill = live_trust.token(drill=True, jti="drill-probe-0001")
    status, headers, _ = site.get("/breakglass-drill-probe", drill)
    assert (status, headers["Content-Type"]) == (200, "image/gif")
    assert site.get("/admin/", drill)[0] == 401
    assert site.get("/breakglass-drill-probe")[0] == 401
    site.put_bundle(version=8, revoked_jti=["drill-probe-0001"])
    assert site.get("/breakglass-drill-probe", drill)[0] == 401


@pytest.mark.parametrize(
    "request_line",
    [
        b"GET /auth HTTP/1.1 x\r\n\r\n",
        b"GET /auth HTTP/9.9\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00",
    ],
)
def test_malformed_request_lines_get_a_400_and_no_traceback(site, request_line):
    def answer(port: int) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            connection.sendall(request_line)
            connection.shutdown(socket.SHUT_WR)
            return connection.makefile("rb").read()

    direct = answer(site.sidecar_port)
    assert direct.startswith(b"HTTP/1.0 400 "), direct[:80]
    assert b"X-Breakglass-Error: bad_request" in direct
    # Through nginx, nginx refuses by itself (400, or 505 for HTTP/9.9); nothing gets through.
    assert answer(site.port).split(b" ")[1] in (b"400", b"505")
    assert site.upstream.seen == []
    log = site.sidecar_log()
    assert "Traceback" not in log and "AttributeError" not in log
    assert '"status": 400' in log
