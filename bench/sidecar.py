"""Benchmark: requests/s of the nginx sidecar (`breakglass serve`) against the same HTTP
server answering 204 without verifying.

    .venv/bin/python bench/sidecar.py [--seconds 3] [--rounds 3] [--connections 8]

Starts two real processes on loopback ports, each with its own Python:
- `breakglass serve` (breakglass/core/sidecar.py) with a freshly signed bundle, and
- the baseline: the sidecar's own server and handler (same parsing, same JSON log line
  per decision) whose decision step answers 204 without looking at the token.

A load generator in this process (asyncio, `--connections` keep-alive HTTP/1.1
connections, each sending its next request when the previous answer arrived, as nginx's
upstream keepalive does) sends `Authorization: Bearer <token>` requests to one server
at a time, alternating for `--rounds` rounds of `--seconds` each; the median counts.
Every answer must be 204 (the tokens are valid), or the run fails.

Two mixes of tokens: `held` (the default headline) cycles through 20 tokens, as during
an incident a few responders' browsers present their tokens again and again; `fresh`
sends every request a token never seen before, the cost of a first sight. Target:
sidecar >= 0.8x the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

AUDIENCE = "payments-admin"
HELD_TOKENS = 20


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _fixtures(folder: Path, fresh: int) -> tuple[list[str], list[str]]:
    """A bundle and roots valid now, and (held, fresh) tokens for AUDIENCE."""
    from devkit import keykit

    now = int(time.time())
    day = 24 * 3600
    (folder / "roots.json").write_bytes(keykit.dumps(keykit.roots()))
    document = keykit.bundle(
        issued_at=now - 60,
        expires_at=now + day,
        keys=[keykit.key_entry(not_before=now - day, not_after=now + 30 * day)],
    )
    (folder / "bundle.json").write_bytes(keykit.dumps(document))

    def token(n: int) -> str:
        return keykit.token(
            aud=AUDIENCE,
            sub=f"responder-{n % HELD_TOKENS}",
            iat=now - 60,
            nbf=now - 60,
            exp=now + 3600,
            jti=str(uuid.UUID(int=n)),
        )

    held = [token(n) for n in range(HELD_TOKENS)]
    return held, [token(HELD_TOKENS + n) for n in range(fresh)]


def _baseline_server(bundle: str, roots: str, listen: str) -> int:
    """The sidecar's server and handler, deciding 204 without reading the token."""
    from http.server import ThreadingHTTPServer

    from breakglass.core.sidecar import BundleSource, handler_for

    source = BundleSource(bundle_path=bundle, roots_path=roots)
    sidecar_handler = handler_for(source=source, audience=AUDIENCE, scope=None)

    class NoVerification(sidecar_handler):
        def _decide(self):
            self._answer(204, {"X-Breakglass-Subject": "-"}, reason="not verified")

    host, _, port = listen.rpartition(":")
    server = ThreadingHTTPServer((host, int(port)), NoVerification)
    print(f"baseline on {listen}", file=sys.stderr, flush=True)
    server.serve_forever()
    return 0


async def _load(port: int, tokens: list[str], seconds: float, connections: int) -> tuple[int, int]:
    """(answers, answers other than 204) in `seconds` over keep-alive connections."""
    requests = [
        (f"GET /auth HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n").encode()
        for token in tokens
    ]
    deadline = time.perf_counter() + seconds
    counts = [0, 0]

    async def client(offset: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        n = offset
        try:
            while time.perf_counter() < deadline:
                writer.write(requests[n % len(requests)])
                n += connections
                head = await reader.readuntil(b"\r\n\r\n")
                counts[0] += 1
                if not head.startswith(b"HTTP/1.1 204 "):
                    counts[1] += 1
                if b"\r\nContent-Length: 0\r\n" not in head:
                    raise RuntimeError(f"unexpected answer: {head[:200]!r}")
        finally:
            writer.close()

    await asyncio.gather(*(client(i) for i in range(connections)))
    return counts[0], counts[1]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_listening(port: int, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listening on {port}")


def main() -> int:
    from bench.common import summary_line

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--baseline-server", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_server:
        return _baseline_server(*args.baseline_server)

    with tempfile.TemporaryDirectory(prefix="bg-sidecar-") as folder:
        folder = Path(folder)
        # Enough first-sight tokens that none repeats within a run of fresh requests.
        held, fresh = _fixtures(folder, fresh=int(20_000 * args.seconds))
        bundle, roots = str(folder / "bundle.json"), str(folder / "roots.json")
        ports = {"sidecar": _free_port(), "baseline": _free_port()}
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        commands = {
            "sidecar": [
                sys.executable, "-m", "breakglass.core", "serve",
                "--bundle", bundle, "--roots", roots, "--audience", AUDIENCE,
                "--listen", f"127.0.0.1:{ports['sidecar']}",
            ],
            "baseline": [
                sys.executable, __file__, "--baseline-server",
                bundle, roots, f"127.0.0.1:{ports['baseline']}",
            ],
        }  # fmt: skip
        # Each decision's JSON log line goes to a file, as to a journal.
        logs = {name: folder / f"{name}.log" for name in commands}
        procs = {
            name: subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=logs[name].open("wb"),
            )
            for name, command in commands.items()
        }
        try:
            for name, proc in procs.items():
                _wait_listening(ports[name], proc, logs[name])
            rates: dict[str, list[float]] = {}
            cpu: dict[str, list[float]] = {}
            for mix, tokens in (("held", held), ("fresh", fresh)):
                for _ in range(args.rounds):
                    for name in ("baseline", "sidecar"):
                        before = _cpu_seconds(procs[name].pid)
                        answers, refused = asyncio.run(
                            _load(ports[name], tokens, args.seconds, args.connections)
                        )
                        used = _cpu_seconds(procs[name].pid) - before
                        if refused:
                            raise SystemExit(f"{name}: {refused} of {answers} answers were not 204")
                        rates.setdefault(f"{name} {mix}", []).append(answers / args.seconds)
                        cpu.setdefault(f"{name} {mix}", []).append(used / answers)
        finally:
            for proc in procs.values():
                proc.kill()
                proc.wait()
    print(
        f"{args.connections} keep-alive connections, {args.rounds} alternating rounds of "
        f"{args.seconds:.0f}s; median requests/s, and the server's own CPU time per request "
        "(what decides requests/s when nothing else runs on the machine)"
    )
    ratios = {}
    for mix, label in (("held", f"{HELD_TOKENS} tokens held"), ("fresh", "every token new")):
        base = statistics.median(rates[f"baseline {mix}"])
        ours = statistics.median(rates[f"sidecar {mix}"])
        base_cpu = statistics.median(cpu[f"baseline {mix}"])
        ours_cpu = statistics.median(cpu[f"sidecar {mix}"])
        ratios[mix] = ours / base
        print(
            f"  {label:16} baseline (204, unverified) {base:7,.0f}/s, {base_cpu * 1e6:4.0f} us CPU;"
            f" breakglass serve {ours:7,.0f}/s, {ours_cpu * 1e6:4.0f} us CPU;"
            f" {ours / base:.3f}x (by CPU per request {base_cpu / ours_cpu:.3f}x)"
        )
    print(
        summary_line(
            "sidecar",
            ratios["held"],
            "the same server answering 204 unverified",
            target=">= 0.8x",
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
