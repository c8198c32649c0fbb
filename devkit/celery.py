"""The Celery app test and benchmark workers run: the project's app, plus what only a
development kit may add to it.

    celery -A devkit.celery worker      (devkit.workers.celery_process does this)

- `devkit.noop_task`: the benchmark's yardstick, the cost of a round trip doing nothing
  (it used to sit among the production tasks);
- a step blocker: with DRILLS_TEST_BLOCK_FILE set, the drill step named by
  DRILLS_TEST_BLOCK_STEP (default "verify") waits while that file exists, after writing
  `<file>.reached`, so an integration test can kill a worker in the middle of a known
  step. It wraps `drills.steps.STEPS` in the worker's own processes; production step code
  has no hook.
"""

from __future__ import annotations

import os
import time

from celery.signals import worker_process_init

from breakglass.project.celery import app

__all__ = ["app", "noop_task"]


@app.task(name="devkit.noop_task")
def noop_task(i: int = 0) -> int:
    return i


def _blocking(step_name: str, step, block_file: str):
    def blocked_step(ctx):
        with open(block_file + ".reached", "w") as fh:
            fh.write(step_name)
        deadline = time.monotonic() + 60
        while os.path.exists(block_file) and time.monotonic() < deadline:
            time.sleep(0.1)
        return step(ctx)

    return blocked_step


@worker_process_init.connect
def _install_step_blocker(**kwargs) -> None:
    block_file = os.environ.get("DRILLS_TEST_BLOCK_FILE")
    if not block_file:
        return
    from drills import steps

    name = os.environ.get("DRILLS_TEST_BLOCK_STEP", "verify")
    steps.STEPS[name] = _blocking(name, steps.STEPS[name], block_file)
