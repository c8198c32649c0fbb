"""The Django admin: administrators only, and only with an OTP-verified session."""

import pytest
from django.test import Client

from devkit.factories import user_make


@pytest.fixture
def ada(db):
    return user_make("ada", role_names=("administrator",), is_staff=True)


def test_a_password_only_session_cannot_reach_the_admin(ada, password_client):
    client = password_client(ada)
    for path in ("/admin/", "/admin/auth/user/", "/admin/accounts/loginthrottle/"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.url.startswith("/accounts/verify/"), path


def test_the_admin_login_page_sends_people_to_the_console_login(db):
    response = Client().get("/admin/login/?next=/admin/auth/user/")
    assert response.status_code == 302
    assert response.url == "/accounts/login/?next=%2Fadmin%2Fauth%2Fuser%2F"


def test_the_admin_login_page_cannot_be_used_to_log_in(ada):
    response = Client().post(
        "/admin/login/", {"username": "ada", "password": "correct horse battery"}
    )
    assert response.status_code in (302, 403)
    assert "/accounts/login/" in response.get("Location", "")


def test_an_otp_verified_administrator_reaches_the_admin(ada, as_user):
    client = as_user(ada)
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/auth/user/").status_code == 200


def test_a_verified_user_who_is_not_staff_is_refused(db, as_user):
    rita = user_make("rita", role_names=("responder",))
    response = as_user(rita).get("/admin/", follow=True)
    assert response.status_code == 403
    assert "Not allowed" in response.content.decode()
