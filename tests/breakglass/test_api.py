"""The JSON API: its own hashed tokens, and exactly the console's policy."""

import json

import pytest
from django.test import Client

from breakglass.access.api_tokens import api_token_create, api_token_revoke
from breakglass.access.models import ApiToken, Grant
from breakglass.audit.models import AuditEvent
from devkit.factories import totp_now


def api(user=None, *, token=None):
    if token is None and user is not None:
        _, token = api_token_create(user=user, name="bot")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}

    class Api:
        def get(self, url):
            return Client().get(url, **headers)

        def post(self, url, body):
            return Client(enforce_csrf_checks=True).post(
                url, json.dumps(body), content_type="application/json", **headers
            )

    return Api()


@pytest.mark.parametrize("url", ["/api/v1/grants/", "/api/v1/paths/", "/api/v1/grants/1/"])
def test_without_a_valid_token_the_api_says_401(db, url):
    for client in (api(), api(token="bgt_not-a-real-token")):
        response = client.get(url)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthenticated"
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_tokens_are_stored_only_as_hashes(responder):
    token, raw = api_token_create(user=responder, name="incident-bot")
    assert raw.startswith("bgt_") and raw not in token.token_hash
    assert ApiToken.objects.get().token_hash == ApiToken.hash_of(raw)


def test_a_revoked_api_token_stops_working(sso_path, responder):
    token, raw = api_token_create(user=responder, name="bot")
    assert api(token=raw).get("/api/v1/grants/").status_code == 200
    api_token_revoke(token=token, actor=responder)
    assert api(token=raw).get("/api/v1/grants/").status_code == 401


def test_request_and_approve_through_the_api(sso_path, responder, approver, second_approver):
    response = api(responder).post(
        "/api/v1/grants/",
        {"path": "sso-backup", "reason": "IdP down", "scopes": ["read"], "lifetime_minutes": 20},
    )
    assert response.status_code == 201, response.content
    grant_id = response.json()["grant"]["id"]
    assert response.json()["grant"]["state"] == "pending"
    assert "credential" not in response.json()["grant"]
    for person in (approver, second_approver):
        response = api(person).post(
            f"/api/v1/grants/{grant_id}/approve/", {"otp": totp_now(person)}
        )
        assert response.status_code == 200, response.content
    assert response.json()["grant"]["state"] == "issued"
    assert "credential" not in response.json()["grant"]  # the approver never sees it
    mine = api(responder).get(f"/api/v1/grants/{grant_id}/").json()["grant"]
    assert mine["credential"].count(".") == 2
    assert mine["approvals"] == ["alex-approver", "bea-approver"]


def test_approving_through_the_api_needs_the_current_otp(sso_path, responder, approver):
    grant_id = (
        api(responder)
        .post("/api/v1/grants/", {"path": "sso-backup", "reason": "x"})
        .json()["grant"]["id"]
    )
    response = api(approver).post(f"/api/v1/grants/{grant_id}/approve/", {"otp": "000000"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "otp_required"
    assert not Grant.objects.get().approvals.exists()


def test_self_approval_through_the_api_is_refused_like_in_the_console(trust):
    from devkit.factories import user_make
    from tests.breakglass.conftest import path_make

    path_make()
    both = user_make("pat-both", role_names=("responder", "approver"))
    client = api(both)
    grant_id = client.post("/api/v1/grants/", {"path": "sso-backup", "reason": "x"}).json()[
        "grant"
    ]["id"]
    response = client.post(f"/api/v1/grants/{grant_id}/approve/", {"otp": totp_now(both)})
    assert response.status_code == 409
    assert response.json()["error"] == {
        "code": "self_approval",
        "message": "You cannot approve your own request.",
    }
    assert AuditEvent.objects.filter(action="grant.approval_refused").exists()


def test_breaking_the_glass_through_the_api(sso_path, responder):
    client = api(responder)
    body = {"path": "sso-backup", "reason": "IdP down", "confirmation": "sso-backup"}
    assert client.post("/api/v1/grants/self-issue/", body).json()["error"]["code"] == "otp_required"
    response = client.post("/api/v1/grants/self-issue/", {**body, "otp": totp_now(responder)})
    assert response.status_code == 201, response.content
    grant = response.json()["grant"]
    assert grant["emergency"] and grant["review_required"] and grant["credential"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"path": "nope", "reason": "x"}, 404, "unknown_path"),
        ({"path": "sso-backup", "reason": "x", "scopes": ["root"]}, 400, "scope_outside_path"),
        (
            {"path": "sso-backup", "reason": "x", "lifetime_minutes": 61},
            400,
            "lifetime_over_maximum",
        ),
        ({"path": "sso-backup", "reason": "x", "lifetime_minutes": "ten"}, 400, "bad_lifetime"),
        ({"path": "sso-backup"}, 400, "missing_reason"),
    ],
)
def test_bad_api_requests_get_clear_json_errors(sso_path, responder, body, status, code):
    response = api(responder).post("/api/v1/grants/", body)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]
    assert not Grant.objects.exists()


def test_malformed_json_is_a_400(sso_path, responder):
    _, raw = api_token_create(user=responder, name="bot")
    response = Client().post(
        "/api/v1/grants/",
        "{nope",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_json"


def test_an_ineligible_api_user_is_refused(sso_path, outsider):
    response = api(outsider).post("/api/v1/grants/", {"path": "sso-backup", "reason": "x"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "ineligible_requester"


def test_revoke_through_the_api(sso_path, responder, django_capture_on_commit_callbacks):
    client = api(responder)
    grant_id = client.post("/api/v1/grants/", {"path": "sso-backup", "reason": "x"}).json()[
        "grant"
    ]["id"]
    assert (
        client.post(f"/api/v1/grants/{grant_id}/revoke/", {}).json()["error"]["code"]
        == "missing_reason"
    )
    response = client.post(f"/api/v1/grants/{grant_id}/revoke/", {"reason": "not needed"})
    assert response.json()["grant"]["state"] == "revoked"


def test_paths_list_includes_the_dependency_chain(sso_path, responder):
    [path] = api(responder).get("/api/v1/paths/").json()["paths"]
    assert path["slug"] == "sso-backup" and path["dependency_chain"] is None


def test_the_api_hides_other_peoples_grants_like_the_console(sso_path, responder, outsider):
    from breakglass.access.grants import grant_request

    grant = grant_request(path=sso_path, requester=responder, reason="x")
    response = api(outsider).get(f"/api/v1/grants/{grant.pk}/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert api(responder).get(f"/api/v1/grants/{grant.pk}/").status_code == 200
