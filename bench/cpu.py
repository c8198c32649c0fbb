"""CPU seconds spent by the processes doing a benchmark's work: its worker processes and
the PostgreSQL backends serving its database.

Throughput ratios measured on a machine other people are using move with their load; the
CPU a unit of work costs moves much less. The game-day and fan-out benchmarks print both:

    meter = CpuMeter(worker_root=worker_pid, database="bg_gameday")
    meter.start()
    ...                          # the measured phase
    seconds = meter.stop()       # CPU of the workers and their database backends

Linux only (/proc); where /proc is missing every figure is 0 and the benchmark says so.
"""

from __future__ import annotations

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds(pid: int) -> float:
    """utime + stime of one process (its threads included), in seconds; 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _descendants(root: int) -> set[int]:
    """`root` and every process below it (a Celery worker and its pool processes)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, []))
    return found


def _backends(database: str) -> set[int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [database],
        )
        return {row[0] for row in cursor.fetchall()}


class CpuMeter:
    """CPU of the processes under `worker_roots` and of `database`'s backends (other than
    this process's own) between start() and stop(). Call sample() now and then while the
    phase runs: a process that exits (a backend replaced after CONN_MAX_AGE) is counted up
    to its last sample; one that starts is counted from zero."""

    def __init__(self, *, worker_roots: list[int], database: str) -> None:
        self.worker_roots, self.database = worker_roots, database
        self.available = Path("/proc/self/stat").exists()
        self.database_share = 0.0
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._backends: set[int] = set()

    def _pids(self) -> set[int]:
        pids: set[int] = set()
        for root in self.worker_roots:
            pids |= _descendants(root)
        backends = _backends(self.database)
        self._backends |= backends
        return pids | backends

    def start(self) -> None:
        self._first, self._last, self._backends = {}, {}, set()
        if self.available:
            self._first = {pid: _cpu_seconds(pid) for pid in self._pids()}
            self._last = dict(self._first)

    def sample(self) -> None:
        if not self.available:
            return
        for pid in self._pids() | set(self._last):
            now = _cpu_seconds(pid)
            if now:
                self._last[pid] = now
                self._first.setdefault(pid, 0.0)

    def stop(self) -> float:
        """CPU seconds since start(); `self.database_share` says how much of it was the
        database's backends."""
        self.sample()
        spent = {pid: self._last[pid] - self._first.get(pid, 0.0) for pid in self._last}
        total = sum(spent.values())
        database = sum(seconds for pid, seconds in spent.items() if pid in self._backends)
        self.database_share = database / total if total else 0.0
        return total
