"""No single administrator above the rules: with the admin's own OTP, an administrator
cannot read anyone's TOTP key or backup codes, and every write through the admin (and
every password, device and role change anywhere) is an event in the hash chain."""

from base64 import b32encode

import pytest
from django.contrib.auth.models import Group, User
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from breakglass.accounts.services import backup_codes_generate
from breakglass.audit.models import AuditEvent
from devkit.factories import user_make


@pytest.fixture
def ada(db):
    return user_make("ada", role_names=("administrator",), is_staff=True, is_superuser=True)


@pytest.fixture
def rita(db):
    return user_make("rita", role_names=("responder",))


def _events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


def test_the_admin_never_shows_a_totp_key(ada, rita, as_user):
    client = as_user(ada)
    device = TOTPDevice.objects.get(user=rita)
    secret_b32 = b32encode(device.bin_key).decode()
    page = client.get(f"/admin/otp_totp/totpdevice/{device.pk}/change/").content.decode()
    assert device.key not in page and secret_b32 not in page
    assert client.get(f"/admin/otp_totp/totpdevice/{device.pk}/config/").status_code == 403
    assert client.get(f"/admin/otp_totp/totpdevice/{device.pk}/qrcode/").status_code == 403
    listing = client.get("/admin/otp_totp/totpdevice/").content.decode()
    assert "qrcode" not in listing


def test_the_admin_cannot_add_a_device_with_a_key_it_chose(ada, rita, as_user):
    client = as_user(ada)
    assert client.get("/admin/otp_totp/totpdevice/add/").status_code == 403
    response = client.post(
        "/admin/otp_totp/totpdevice/add/",
        {"user": rita.pk, "name": "mine", "key": "00" * 20, "step": 30, "t0": 0, "digits": 6},
    )
    assert response.status_code == 403
    assert TOTPDevice.objects.filter(user=rita).count() == 1


def test_the_admin_never_shows_backup_codes(ada, rita, as_user):
    codes = backup_codes_generate(user=rita)
    device = StaticDevice.objects.get(user=rita)
    page = as_user(ada).get(f"/admin/otp_static/staticdevice/{device.pk}/change/")
    assert page.status_code == 200
    assert not any(code in page.content.decode() for code in codes)


def test_removing_a_device_in_the_admin_is_audited(ada, rita, as_user):
    device = TOTPDevice.objects.get(user=rita)
    response = as_user(ada).post(f"/admin/otp_totp/totpdevice/{device.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    [deleted] = _events("admin.deleted")
    assert (deleted.actor_label, deleted.object_type) == ("ada", "otp_totp.totpdevice")
    [hook] = _events("auth.device_deleted")
    assert hook.actor_label == "ada" and hook.data["name"] == "phone"


def test_a_password_changed_in_the_admin_is_audited(ada, rita, as_user):
    response = as_user(ada).post(
        f"/admin/auth/user/{rita.pk}/password/",
        {"password1": "a new long passphrase 42", "password2": "a new long passphrase 42"},
    )
    assert response.status_code == 302
    [changed] = _events("auth.password_changed")
    assert (changed.actor_label, changed.data["user"]) == ("ada", "rita")
    [logged] = _events("admin.changed")
    assert logged.object_id == str(rita.pk) and "password" in logged.data["change"].lower()


def test_a_password_changed_outside_any_request_is_audited(rita):
    rita.set_password("changed from the shell")
    rita.save()
    [changed] = _events("auth.password_changed")
    assert (changed.actor_label, changed.data["user"]) == ("system", "rita")


def test_a_saved_user_without_a_new_password_is_not_a_password_change(rita):
    rita.first_name = "Rita"
    rita.save()
    assert _events("auth.password_changed") == []


def test_a_group_membership_change_in_the_admin_is_audited(ada, rita, as_user):
    approvers, _ = Group.objects.get_or_create(name="approver")
    page = as_user(ada).get(f"/admin/auth/user/{rita.pk}/change/")
    form = page.context["adminform"].form
    data = {
        name: value
        for name, value in form.initial.items()
        if value is not None and name not in ("groups", "user_permissions", "password")
    }
    data.update(
        {
            "username": "rita",
            "groups": [g.pk for g in rita.groups.all()] + [approvers.pk],
            "date_joined_0": rita.date_joined.strftime("%Y-%m-%d"),
            "date_joined_1": rita.date_joined.strftime("%H:%M:%S"),
            "is_active": "on",
        }
    )
    data.pop("date_joined", None)
    data.pop("last_login", None)
    response = as_user(ada).post(f"/admin/auth/user/{rita.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert User.objects.get(pk=rita.pk).groups.filter(name="approver").exists()
    added = [e for e in _events("auth.groups_add") if e.actor_label == "ada"]
    assert [e.data for e in added] == [{"users": ["rita"], "groups": ["approver"]}]
    assert _events("admin.changed")[-1].actor_label == "ada"


def test_creating_a_user_anywhere_is_audited(db):
    User.objects.create_user("mallory", password="x" * 20, is_staff=True)
    [created] = _events("auth.user_created")
    assert created.data == {"user": "mallory", "is_staff": True, "is_superuser": False}
