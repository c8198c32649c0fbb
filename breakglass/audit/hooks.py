"""Make every commit append its transaction's audit events first, so no audited write
can forget to: the services only call `audit_record`.

Django has no pre-commit hook, so each database connection gets thin wrappers (installed
once per connection object, on `connection_created`) around:
- `commit`: append the pending events (`audit_flush`), then COMMIT. A COMMIT that fails
  is marked, so the transient-failure retry never repeats a transaction that may have
  committed (breakglass.project.transient).
- `rollback`, `savepoint_rollback`, `close`: forget the events that were rolled back.
- `savepoint_commit`: in a test, the test case's transaction never commits; releasing
  the savepoint of a block whose enclosing blocks all belong to the test case is that
  block's commit, so the events are appended there (what production does at COMMIT).
"""

from __future__ import annotations

from django.db import DatabaseError

_INSTALLED = "breakglass_audit_hooks"


def install(sender=None, connection=None, **kwargs) -> None:
    if connection is None or connection.__dict__.get(_INSTALLED):
        return
    from breakglass.audit.services import _caller_owns_no_transaction, audit_discard, audit_flush
    from breakglass.project.transient import mark_commit_failure

    commit, rollback = connection.commit, connection.rollback
    savepoint_commit, savepoint_rollback = (
        connection.savepoint_commit,
        connection.savepoint_rollback,
    )
    close = connection.close

    def commit_with_audit():
        audit_flush(connection)
        try:
            commit()
        except DatabaseError as exc:
            mark_commit_failure(exc)
            raise

    def rollback_with_audit():
        audit_discard(connection)
        rollback()

    def savepoint_commit_with_audit(sid):
        if connection.in_atomic_block and _caller_owns_no_transaction(connection):
            audit_flush(connection, before_commit=False)
        savepoint_commit(sid)

    def savepoint_rollback_with_audit(sid):
        audit_discard(connection, savepoint=sid)
        savepoint_rollback(sid)

    def close_with_audit():
        audit_discard(connection)
        close()

    connection.commit = commit_with_audit
    connection.rollback = rollback_with_audit
    connection.savepoint_commit = savepoint_commit_with_audit
    connection.savepoint_rollback = savepoint_rollback_with_audit
    connection.close = close_with_audit
    connection.__dict__[_INSTALLED] = True
