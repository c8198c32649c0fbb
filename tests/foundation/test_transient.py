"""Transient database failures are retried a bounded number of times, others never."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, OperationalError, connection, transaction

from breakglass.audit.models import AuditEvent
from breakglass.audit.services import audit_record
from breakglass.project import transient
from breakglass.project.transient import DatabaseUnavailable, retry_transient

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _raise_sqlstate(state: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DO $$ BEGIN RAISE EXCEPTION 'injected' USING ERRCODE = '{state}'; END $$")


def test_a_deadlock_victim_is_run_again_and_its_audit_event_written_once():
    calls = []
    before = transient.retry_counts["deadlock"]

    @retry_transient
    def act():
        with transaction.atomic():
            calls.append(1)
            audit_record(action="test.retried", data={"call": len(calls)})
            if len(calls) == 1:
                _raise_sqlstate("40P01")

    act()
    assert len(calls) == 2
    assert transient.retry_counts["deadlock"] == before + 1
    assert list(AuditEvent.objects.values_list("action", "data")) == [("test.retried", {"call": 2})]


def test_a_serialization_failure_is_retried_at_most_the_configured_number_of_times(settings):
    settings.BREAKGLASS_TRANSIENT_ATTEMPTS = 3
    calls = []

    @retry_transient
    def act():
        with transaction.atomic():
            calls.append(1)
            _raise_sqlstate("40001")

    with pytest.raises(OperationalError):
        act()
    assert len(calls) == 3


def test_a_connection_killed_before_commit_is_retried_on_a_new_connection():
    calls = []

    @retry_transient
    def act():
        with transaction.atomic():
            calls.append(1)
            if len(calls) == 1:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
            audit_record(action="test.reconnected")

    act()
    assert len(calls) == 2
    assert AuditEvent.objects.filter(action="test.reconnected").count() == 1


def test_an_integrity_error_is_not_retried():
    calls = []

    @retry_transient
    def act():
        calls.append(1)
        _raise_sqlstate("23505")

    with pytest.raises(IntegrityError):
        act()
    assert len(calls) == 1


def test_inside_a_callers_transaction_nothing_is_retried():
    calls = []

    @retry_transient
    def act():
        calls.append(1)
        _raise_sqlstate("40P01")

    with pytest.raises(OperationalError), transaction.atomic():
        act()
    assert len(calls) == 1


def test_a_lost_database_is_reported_in_one_line(settings):
    settings.BREAKGLASS_TRANSIENT_ATTEMPTS = 1

    @retry_transient
    def act():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    with pytest.raises(DatabaseUnavailable) as excinfo:
        act()
    assert "\n" not in str(excinfo.value)
    assert str(excinfo.value).startswith("the database is unreachable")
