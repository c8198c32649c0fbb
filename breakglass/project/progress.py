"""Transactions for progress records: writes a lease or a sweep would rebuild anyway.

A drill run's step states and lease, an outbox row's "delivered" mark: each is written
many times a second at game-day or fan-out scale, and on PostgreSQL every COMMIT waits for
its WAL record to reach the disk (an fsync, about 2 ms here), which is most of what such
a write costs. `progress_atomic()` commits them with `synchronous_commit = off` for that
transaction only: the write is visible to every other session at once, as usual; only its
durability against a crash of the database server itself is deferred by at most three
times `wal_writer_delay` (600 ms by default). The WAL is written in order, so the next
ordinary commit on the server (a grant, a revocation, an audit event) makes every earlier
progress write durable with it.

What a database crash can therefore lose is the tail of progress written after the last
ordinary commit, and each caller says why that is safe: the lease of a run or of a claimed
row expires and the reaper or the sweep takes it over, exactly as after a worker crash.
Never use it for a write whose loss someone could not repair that way (grants,
revocations, keys, bundles, audit events, claims that decide who may act).

`progress_update()` is the one-statement form (one round trip instead of four: on a busy
machine each round trip is a wait for two processes to be scheduled). `progress_session()`
does the same for every transaction of a block that runs outside any transaction, for
work that is redone as a whole when its progress is lost: an outbox batch, whose
handlers run again for any row whose "delivered" mark a crash took away.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction
from django.db.models import sql


def progress_only() -> None:
    """Say, inside a transaction, that it writes only progress: its COMMIT will not wait for
    the disk (PostgreSQL). Call it only directly in the `atomic()` block your own code
    opened; in a nested block (a savepoint in someone else's transaction, or a test's) it
    does nothing: relaxing the commit of a transaction that may also hold writes that must
    be durable is not the nested code's decision."""
    if (
        connection.vendor == "postgresql"
        and connection.in_atomic_block
        and not connection.savepoint_ids  # the outermost block: this transaction is ours
    ):
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


@contextmanager
def progress_atomic() -> Iterator[None]:
    """`transaction.atomic()` committing without waiting for the disk (`progress_only`)."""
    with transaction.atomic():
        progress_only()
        yield


def progress_execute(*statements: tuple[str, list]) -> int:
    """Run data-modifying statements, each `(sql, params)`, as progress writes; return the
    row count of the last. Outside any transaction on PostgreSQL they are sent after `SET
    LOCAL synchronous_commit TO OFF` in one message: one implicit transaction, one round
    trip. Anywhere else they run one by one (inside a transaction, as part of it)."""
    with connection.cursor() as cursor:
        if connection.in_atomic_block or connection.vendor != "postgresql":
            for statement, params in statements:
                cursor.execute(statement, params)
            return cursor.rowcount
        cursor.execute(
            "; ".join(["SET LOCAL synchronous_commit TO OFF", *(sql for sql, _ in statements)]),
            [param for _, params in statements for param in params],
        )
        for _ in statements:
            cursor.nextset()  # past SET's result, to each statement's, ending at the last
        return cursor.rowcount


def update_sql(queryset, **fields) -> tuple[str, list]:
    """The UPDATE statement `queryset.update(**fields)` would run, and its parameters (for
    a progress write, or to use inside a larger statement)."""
    query = queryset.query.chain(sql.UpdateQuery)
    query.add_update_values(fields)
    if query.related_updates:
        raise ValueError("an update of several tables is not one statement")
    statement, params = query.get_compiler(queryset.db).as_sql()
    return statement, list(params)


def progress_update(queryset, **fields) -> int:
    """`queryset.update(**fields)` as a progress write (`progress_execute`)."""
    statement, params = update_sql(queryset, **fields)
    return progress_execute((statement, params)) if statement else 0


@contextmanager
def progress_session() -> Iterator[None]:
    """Every commit in the block skips the wait for the disk (PostgreSQL), then the
    session's setting is restored. Outside any transaction only."""
    if connection.in_atomic_block or connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO OFF")
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("RESET synchronous_commit")
        except Exception:  # noqa: S110 - a broken connection is replaced, with the default
            pass
