"""One domain error type (message, code, status) for every app, mapped to a response once
for the console and once for the API."""

import json
import logging

import pytest
from django.core.exceptions import ValidationError
from django.test import RequestFactory

from breakglass.access.errors import GrantError
from breakglass.keys.selectors import KeysNotReady
from breakglass.keys.services import BundleImportError, TokenRequestInvalid
from breakglass.project.errors import DomainError, DomainErrorMiddleware, domain_error_response
from comms.errors import CommsError
from drills.errors import DrillBlocked, DrillError, DrillNotAllowed


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (GrantError, 400),
        (DrillError, 400),
        (DrillBlocked, 409),
        (DrillNotAllowed, 403),
        (CommsError, 400),
        (BundleImportError, 400),
        (TokenRequestInvalid, 400),
        (KeysNotReady, 503),
    ],
)
def test_every_apps_refusal_is_a_domain_error_with_a_message_code_and_status(error, status):
    exc = error("Say why.")
    assert isinstance(exc, DomainError)
    assert (str(exc), exc.message, exc.status) == ("Say why.", "Say why.", status)
    assert exc.code and exc.code != ""


def test_a_comms_error_is_still_a_validation_error_for_forms():
    exc = CommsError("An update cannot be empty.", code="empty")
    assert isinstance(exc, ValidationError)
    assert exc.messages == ["An update cannot be empty."]
    assert exc.code == "empty"


def test_the_api_answers_a_refusal_with_its_status_code_and_message():
    response = domain_error_response(KeysNotReady("no issuer key yet: run init_keys"))
    assert response.status_code == 503
    assert json.loads(response.content) == {
        "error": {"code": "keys_not_ready", "message": "no issuer key yet: run init_keys"}
    }


@pytest.mark.parametrize(("status", "heading"), [(403, b"Not allowed"), (409, b"Not done")])
def test_the_console_shows_an_uncaught_refusal_as_its_error_page_without_a_traceback(
    db, caplog, status, heading
):
    request = RequestFactory().post("/drills/killswitch/")
    request.user = None
    middleware = DomainErrorMiddleware(lambda r: None)
    with caplog.at_level(logging.INFO):
        response = middleware.process_exception(
            request, GrantError("This grant is already revoked.", status=status)
        )
    assert response.status_code == status
    assert heading in response.content
    assert b"This grant is already revoked." in response.content
    assert not [r for r in caplog.records if r.exc_info]


def test_other_exceptions_are_left_to_django(db):
    middleware = DomainErrorMiddleware(lambda r: None)
    assert middleware.process_exception(RequestFactory().get("/"), RuntimeError("bug")) is None
