"""bench/all runs the benchmarks and ends with each one's summary line; its quick mode
on the benchmarks that need no database is a smoke test of the runner (no timings are
asserted: only that each ran and said what it measured against what)."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUMMARY = re.compile(r"^[a-z0-9_]+: \d+\.\d{3}x .+ \(target [<>]= \d+(\.\d+)?x\)")


def run_all(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / "all"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_every_benchmark_script_is_run_by_bench_all():
    listed = set(run_all("--list").stdout.split())
    scripts = {path.stem for path in (ROOT / "bench").glob("*.py")}
    # common.py and cpu.py are shared libraries; faults.py counts losses and recovery,
    # no ratio.
    assert scripts - {"__init__", "common", "cpu", "faults"} == listed


def test_a_quick_run_ends_with_each_benchmarks_summary_line():
    result = run_all("--quick", "--only", "verify_throughput,cli_cold_start")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = result.stdout.split("==> summary", 1)[1].splitlines()[1:]
    assert [line.split(":", 1)[0] for line in summary] == ["verify_throughput", "cli_cold_start"]
    for line in summary:
        assert SUMMARY.match(line), line


def test_an_unknown_benchmark_name_is_refused_with_the_list_to_choose_from():
    result = run_all("--only", "nonesuch")
    assert result.returncode == 2
    assert "--list names them" in result.stderr
