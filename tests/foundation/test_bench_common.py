"""bench/common.py is a library for the benchmark scripts: importable with no side
effects, and its baseline actually exercises Django."""

import os
import subprocess
import sys
from pathlib import Path

from bench.common import bare_view_rate, print_ratios, rate

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_helpers_configures_nothing():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    probe = (
        "import bench.common, django.conf, sys; "
        "print(django.conf.settings.configured, 'celery' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.split() == ["False", "False"], result.stderr


def test_rates_are_operations_per_second():
    calls = []
    per_second = rate(lambda: calls.append(1), seconds=0.05, warmup=5)
    measured = len(calls) - 5  # the warm-up calls are not counted
    assert measured >= 1
    # Operations over elapsed time, and the elapsed time is at least the asked-for 0.05 s:
    # a relation, not a speed, so a loaded machine cannot fail it.
    assert 0 < per_second <= measured / 0.05


def test_the_bare_view_baseline_serves_real_requests():
    # bare_view_rate asserts every response is a 200; a positive rate means it served some.
    assert bare_view_rate(seconds=0.2) > 0


def test_figures_print_as_ratios_to_the_baseline(capsys):
    print_ratios({"bare": 200.0, "mine": 50.0}, baseline="bare")
    lines = capsys.readouterr().out.splitlines()
    assert "1.000x bare" in lines[0] and "0.250x bare" in lines[1]
