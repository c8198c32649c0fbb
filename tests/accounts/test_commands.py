"""role_assign and otp_reset: ten-line wrappers around the account services."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django_otp import user_has_device

from breakglass.accounts import roles
from breakglass.accounts.services import backup_codes_generate
from breakglass.audit.models import AuditEvent
from devkit.factories import user_make


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_role_assign_gives_and_removes_a_role(db):
    ada = user_make("ada")
    assert run("role_assign", "ada", "administrator") == "ada is now administrator.\n"
    ada.refresh_from_db()
    assert ada.is_staff and roles.user_has_role(ada, roles.ADMINISTRATOR)
    run("role_assign", "ada", "administrator", "--remove")
    assert not roles.user_has_role(ada, roles.ADMINISTRATOR)


def test_role_assign_refuses_unknown_users_and_roles(db):
    with pytest.raises(CommandError, match="Unknown user 'nobody'"):
        run("role_assign", "nobody", "approver")
    user_make("ada")
    with pytest.raises(CommandError, match="invalid choice: 'root'"):
        run("role_assign", "ada", "root")


def test_otp_reset_removes_every_device_and_is_audited(db, password_client):
    rita = user_make("rita")
    backup_codes_generate(user=rita)
    assert "Removed 2 device(s) of rita" in run("otp_reset", "rita")
    assert not user_has_device(rita, confirmed=None)
    assert AuditEvent.objects.get(action="auth.otp_reset").data == {"user": "rita", "devices": 2}
    response = password_client(rita).get("/accounts/verify/")
    assert response.url.startswith("/accounts/enrol/")


def test_otp_reset_unverifies_sessions_that_used_the_old_device(db, as_user):
    rita = user_make("rita")
    client = as_user(rita)
    assert client.get("/").status_code == 200
    run("otp_reset", "rita")
    assert client.get("/").url.startswith("/accounts/verify/")
