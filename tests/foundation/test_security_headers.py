"""Headers every response carries, CSRF, and error pages that never show a traceback."""

import pytest
from django.conf import settings
from django.http import HttpResponse
from django.test import Client
from django.urls import path

from breakglass.accounts.decorators import public
from devkit.factories import user_make


@public
def _boom(request):
    raise RuntimeError("secret internals: SELECT * FROM keys_signingkey")


@public
def _forbidden(request):
    from django.core.exceptions import PermissionDenied

    raise PermissionDenied("Only approvers of this path can approve.")


@public
def _ok(request):
    return HttpResponse("ok")


# Used as ROOT_URLCONF by the error-page tests below (pytest.mark.urls).
urlpatterns = [
    path("boom/", _boom),
    path("forbidden/", _forbidden),
    path("ok/", _ok),
]


def policy_directives(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


def test_the_policy_allows_nothing_inline_and_nothing_remote():
    directives = policy_directives(settings.CONTENT_SECURITY_POLICY)
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["base-uri"] == ["'none'"]
    for sources in directives.values():
        for source in sources:
            assert source in ("'self'", "'none'", "data:"), source


@pytest.fixture
def rita(db):
    return user_make("rita")


def password_only(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_every_kind_of_response_carries_the_policy(rita, as_user):
    verified = as_user(rita)
    responses = {
        "login page": Client().get("/accounts/login/"),
        "redirect": Client().get("/"),
        "console": verified.get("/"),
        "account": verified.get("/accounts/"),
        "not found": verified.get("/no-such-page/"),
        "method not allowed": verified.get("/accounts/logout/"),
        "static file": Client().get("/static/breakglass/console.css"),
        "svg": Client().get("/static/breakglass/favicon.svg"),
        "otp step": password_only(rita).get("/accounts/verify/"),
    }
    for name, response in responses.items():
        assert (
            response.headers.get("Content-Security-Policy") == settings.CONTENT_SECURITY_POLICY
        ), name
        assert response.headers.get("X-Content-Type-Options") == "nosniff", name
        assert "camera=()" in response.headers.get("Permissions-Policy", ""), name


def test_console_pages_cannot_be_framed(rita, as_user):
    assert as_user(rita).get("/").headers["X-Frame-Options"] == "DENY"


def test_a_post_without_a_csrf_token_is_refused_with_a_clear_page(db):
    user_make("rita")
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        "/accounts/login/", {"username": "rita", "password": "correct horse battery"}
    )
    assert response.status_code == 403
    assert "The form expired" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_post_with_the_token_is_accepted(db):
    user_make("rita")
    client = Client(enforce_csrf_checks=True)
    client.get("/accounts/login/")
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    response = client.post(
        "/accounts/login/",
        {"username": "rita", "password": "correct horse battery", "csrfmiddlewaretoken": token},
    )
    assert response.status_code == 302


@pytest.mark.urls(__name__)
def test_a_server_error_shows_a_plain_page_without_a_traceback(db):
    client = Client(raise_request_exception=False)
    response = client.get("/boom/")
    assert response.status_code == 500
    body = response.content.decode()
    assert "Something went wrong" in body
    for leak in ("Traceback", "RuntimeError", "secret internals", "SELECT"):
        assert leak not in body
    assert "Content-Security-Policy" in response.headers


@pytest.mark.urls(__name__)
def test_a_permission_error_shows_the_403_page(db):
    response = Client().get("/forbidden/")
    assert response.status_code == 403
    assert "Not allowed" in response.content.decode()
    assert "Only approvers of this path can approve." in response.content.decode()


def test_an_unknown_page_shows_the_404_page_without_debug_details(db):
    response = Client().get("/no-such-page/")
    assert response.status_code == 404
    body = response.content.decode()
    assert "Not found" in body
    assert "urlpatterns" not in body and "Traceback" not in body
