"""On PostgreSQL the audit table itself refuses UPDATE, DELETE and TRUNCATE."""

import pytest
from django.db import DatabaseError, connection, transaction

from breakglass.audit.models import AuditEvent
from breakglass.audit.services import audit_record

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def event():
    return audit_record(action="test.kept", data={"n": 1})


def test_the_trigger_refuses_an_update(event):
    with pytest.raises(DatabaseError, match="append-only: UPDATE"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="test.rewritten")
    assert AuditEvent.objects.get(pk=event.pk).action == "test.kept"


def test_the_trigger_refuses_a_delete(event):
    with pytest.raises(DatabaseError, match="append-only: DELETE"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_the_trigger_refuses_a_truncate(event):
    with pytest.raises(DatabaseError, match="append-only: TRUNCATE"), transaction.atomic():
        with connection.cursor() as cursor:
            # Without the test-only session setting that lets Django flush between tests.
            cursor.execute("SET LOCAL breakglass.audit_truncate = 'refuse'")
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending FK checks
            cursor.execute("TRUNCATE audit_auditevent")
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_inserting_still_works(event):
    assert audit_record(action="test.next").seq == event.seq + 1
