"""Cold start of one `breakglass verify` run vs importing cryptography's Ed25519 module.

    .venv/bin/python bench/cli_cold_start.py [--runs 30]

Each run is a fresh process (the way sshd's AuthorizedKeysCommand or a PAM hook calls
it). The baseline is `python -c "import cryptography.hazmat.primitives.asymmetric.ed25519"`,
the least any Python verifier must pay. Runs alternate baseline / CLI so background load
hits both alike; medians count. Target: CLI at most 1.3x the baseline. For scale it also
times a Django `manage.py check` start unless --no-django.

Like `pip install` does, the verifier's modules are byte-compiled first: cryptography's
own modules already are, and a deployment never recompiles sources on every run.
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BASELINE = [sys.executable, "-c", "import cryptography.hazmat.primitives.asymmetric.ed25519"]


def write_fixtures(folder: Path) -> list[str]:
    from devkit import keykit as kit  # deterministic keys, bundle and token

    (folder / "bundle.json").write_bytes(kit.dumps(kit.bundle()))
    (folder / "roots.json").write_bytes(kit.dumps(kit.roots()))
    script = Path(sys.executable).parent / "breakglass"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "breakglass.core"]
    return command + [
        "verify",
        "--bundle", str(folder / "bundle.json"),
        "--roots", str(folder / "roots.json"),
        "--audience", kit.AUDIENCE,
        "--scope", "admin",
        "--now", str(kit.NOW),
        kit.token(),
    ]  # fmt: skip


def timed(command: list[str], *, expect: int = 0) -> tuple[float, float]:
    """Wall-clock and CPU (user + system) seconds of one run of `command`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != expect:
        raise SystemExit(f"{command[0]} exited {result.returncode}: {result.stderr.decode()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--no-django", action="store_true")
    args = parser.parse_args()
    for folder in ("breakglass/core",):
        compileall.compile_dir(ROOT / folder, quiet=1)
    compileall.compile_file(ROOT / "breakglass/__init__.py", quiet=1)
    with tempfile.TemporaryDirectory() as folder:
        cli = write_fixtures(Path(folder))
        for _ in range(3):  # warm the page cache
            timed(BASELINE)
            timed(cli)
        baseline, verify = [], []
        for _ in range(args.runs):
            baseline.append(timed(BASELINE))
            verify.append(timed(cli))
    print(f"median of {args.runs} alternating runs each      wall clock    CPU (user+sys)")
    ratios = []
    for index, label in ((0, "wall clock"), (1, "CPU time")):
        base = statistics.median(run[index] for run in baseline)
        ours = statistics.median(run[index] for run in verify)
        ratios.append((label, base, ours))
    for name, runs in (("import ed25519 (baseline)", baseline), ("breakglass verify", verify)):
        wall = statistics.median(run[0] for run in runs) * 1000
        cpu = statistics.median(run[1] for run in runs) * 1000
        print(f"  {name:34} {wall:7.1f} ms    {cpu:7.1f} ms")
    for label, base, ours in ratios:
        print(f"breakglass verify / baseline ({label}): {ours / base:.2f}x (target <= 1.3x)")
    if not args.no_django:
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
        django = [sys.executable, str(ROOT / "manage.py"), "check"]
        runs = [timed_env(django, env) for _ in range(max(3, args.runs // 6))]
        wall_base = ratios[0][1]
        print(
            f"for scale, a Django start (manage.py check): {statistics.median(runs) * 1000:.0f} ms "
            f"wall clock, {statistics.median(runs) / wall_base:.1f}x the baseline"
        )
    from bench.common import summary_line

    _, base, ours = ratios[0]
    print(
        summary_line(
            "cli_cold_start",
            ours / base,
            "importing cryptography's Ed25519 (wall clock)",
            target="<= 1.3x",
        )
    )


def timed_env(command: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=ROOT)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
