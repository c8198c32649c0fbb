"""Helpers for tests that run the verifier on real host programs (nginx, Linux-PAM; sshd
has its own module, tests/integrations/sshd.py, built on these).

Each program binds 127.0.0.1 on a free port, keeps its configuration, logs and pid in a
temporary directory and is stopped by the fixture that started it. The trust documents are
made with `devkit.keykit`'s fixed keys but around the real clock, because sshd and nginx
run the verifier with the real time.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from devkit import keykit as kit
from tests import services

SYSTEM_PYTHON = "/usr/bin/python3"
HOUR = 3600


def require_program(path: str, package: str) -> str:
    """The program's path; outside CI a missing program skips the test, in CI it fails."""
    found = path if os.path.exists(path) else shutil.which(os.path.basename(path))
    if found:
        return found
    reason = f"{path} not found (apt-get install {package})"
    if services.in_ci():
        pytest.fail(f"CI must provide this program: {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, *, process: subprocess.Popen | None = None, timeout=20.0) -> None:
    """Block until something accepts connections on 127.0.0.1:port (or the process died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class LiveTrust:
    """Roots, bundles and tokens from the test kit's keys, valid around the real clock."""

    def __init__(self, *, now: int | None = None):
        self.now = int(time.time()) if now is None else now

    def roots(self) -> bytes:
        return kit.dumps(kit.roots())

    def bundle(self, *, version: int = 7, revoked_jti=(), **overrides) -> bytes:
        now = self.now
        document = kit.bundle(
            version=version,
            issued_at=now - 60,
            expires_at=now + 24 * HOUR,
            keys=[kit.key_entry(not_before=now - 30 * 24 * HOUR, not_after=now + 30 * 24 * HOUR)],
            revoked_jti=[{"jti": jti, "exp": now + 2 * HOUR} for jti in revoked_jti],
            **overrides,
        )
        return kit.dumps(document)

    def token(self, **overrides) -> str:
        now = self.now
        overrides.setdefault("iat", now - 30)
        overrides.setdefault("nbf", now - 30)
        overrides.setdefault("exp", now + HOUR)
        return kit.token(**overrides)

    def install(self, directory: Path, *, audience: str = kit.AUDIENCE, **bundle) -> Path:
        """Write roots.json, bundle.json and audience into `directory` (like /etc/breakglass)."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "roots.json").write_bytes(self.roots())
        (directory / "bundle.json").write_bytes(self.bundle(**bundle))
        (directory / "audience").write_text(audience + "\n")
        for name in ("roots.json", "bundle.json", "audience"):
            (directory / name).chmod(0o644)
        return directory


REPOSITORY = Path(__file__).resolve().parents[2]
INTEGRATION_DOCS = REPOSITORY / "docs" / "integrations"


def documented_block(page: str, language: str) -> str:
    """The first fenced block of `language` in docs/integrations/<page>: the configuration
    the tests run is the one the docs show, read from the docs themselves."""
    text = (INTEGRATION_DOCS / page).read_text(encoding="utf-8")
    opening = f"```{language}\n"
    start = text.index(opening) + len(opening)
    return text[start : text.index("```", start)]


def rewritten(text: str, replacements: dict[str, str]) -> str:
    """`text` with each documented path or name replaced; every one must occur (so the
    test notices when the docs change under it)."""
    for old, new in replacements.items():
        assert old in text, f"{old!r} not found: the documented configuration changed"
        text = text.replace(old, new)
    return text


def private_root_directory(prefix: str) -> Path:
    """A directory whose every ancestor is root-owned and not group/world-writable, as sshd
    requires for AuthorizedKeysCommand (it refuses anything under the sticky /tmp)."""
    import tempfile

    directory = Path(tempfile.mkdtemp(prefix=prefix, dir="/run"))
    directory.chmod(0o755)
    return directory


class HostAccount:
    """A temporary local account (useradd), removed afterwards; password '*' (none, and
    not 'locked' in sshd's eyes, unlike useradd's default '!'). With `home_parent` it
    gets a home folder there; without, none."""

    def __init__(self, home_parent: Path | None = None):
        self.name = f"bgt{os.urandom(4).hex()}"
        if home_parent is None:
            self.home = Path("/nonexistent")
            home = ["--no-create-home", "--home-dir", str(self.home)]
        else:
            self.home = home_parent / self.name
            home = ["--create-home", "--home-dir", str(self.home)]
        subprocess.run(
            ["useradd", *home, "--shell", "/bin/sh", "--password", "*", self.name],
            check=True,
            capture_output=True,
        )

    def remove(self) -> None:
        with_home = ["--remove"] if self.home != Path("/nonexistent") else []
        subprocess.run(["userdel", *with_home, "--force", self.name], capture_output=True)


def documented_commands(page: str) -> list[list[str]]:
    """The commands of the first ```sh block of a docs/integrations page, as argv lists."""
    import shlex

    block = documented_block(page, "sh").replace("\\\n", " ")
    return [shlex.split(line) for line in block.splitlines() if line.strip()]


class Nginx:
    """A private nginx (`nginx -c CONF -p PREFIX`, `daemon off`, pid and logs in `directory`)
    whose `http {}` holds `http_block` verbatim."""

    def __init__(self, directory: Path, http_block: str, *, port: int):
        self.nginx = require_program("/usr/sbin/nginx", "nginx")
        self.directory, self.port = directory, port
        self.error_log = directory / "error.log"
        temp = {name: directory / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
        self.config = directory / "nginx.conf"
        self.config.write_text(
            "daemon off;\n"
            "worker_processes 1;\n"
            f"pid {directory / 'nginx.pid'};\n"
            f"error_log {self.error_log} info;\n"
            "events { worker_connections 64; }\n"
            "http {\n"
            f"    access_log {directory / 'access.log'};\n"
            f"    client_body_temp_path {temp['body']};\n"
            f"    proxy_temp_path {temp['proxy']};\n"
            f"    fastcgi_temp_path {temp['fastcgi']};\n"
            f"    uwsgi_temp_path {temp['uwsgi']};\n"
            f"    scgi_temp_path {temp['scgi']};\n"
            f"{http_block}\n"
            "}\n"
        )
        self.process: subprocess.Popen | None = None

    def _command(self, *extra: str) -> list[str]:
        return [self.nginx, "-p", str(self.directory), "-c", str(self.config), "-e",
                str(self.error_log), *extra]  # fmt: skip

    def __enter__(self) -> Nginx:
        check = subprocess.run(self._command("-t"), capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.process = subprocess.Popen(
            self._command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_port(self.port, process=self.process)
        return self

    def __exit__(self, *exc_info) -> None:
        if self.process is not None:
            stop(self.process)


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


class NginxSite:
    """docs/integrations/nginx.md on loopback: nginx, the production sidecar, the drill
    probe sidecar and an upstream. `conf` holds bundle.json and roots.json (like
    /etc/breakglass); `audience` replaces the documented `payments-admin`."""

    def __init__(self, root: Path, verifier_command: list[str], *, conf: Path, audience: str):
        self.root, self.conf = root, conf
        (root / "nginx").mkdir()
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
            argv = [{"payments-admin": audience}.get(a, a) for a in argv]
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

    def put_bundle(self, content: bytes) -> None:
        """Replace the bundle file as a sync would: a new file renamed into place."""
        temporary = self.conf / "bundle.json.new"
        temporary.write_bytes(content)
        os.replace(temporary, self.conf / "bundle.json")

    def sidecar_log(self) -> str:
        return "".join(log.read_text(errors="replace") for log in self.logs)

    def close(self) -> None:
        for process in self.sidecars:
            stop(process)
        self.upstream.close()
