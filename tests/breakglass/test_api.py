"""The JSON API: its own hashed tokens, and exactly the console's policy."""

import json
from datetime import timedelta

import pytest
import time_machine
from django.test import Client

from breakglass.access.api_tokens import API_TOKEN_SCOPES, api_token_create, api_token_revoke
from breakglass.access.errors import GrantError
from breakglass.access.models import ApiToken, Grant
from breakglass.audit.models import AuditEvent
from devkit.factories import totp_now


def api(user=None, *, token=None, scopes=API_TOKEN_SCOPES):
    """A client with a token of `user` (every scope, created after a fresh OTP and living
    24 hours, unless `scopes` says otherwise) or with the raw `token` given."""
    if token is None and user is not None:
        _, token = api_token_create(
            user=user,
            name="bot",
            scopes=scopes,
            fresh_otp=True,
            lifetime=timedelta(hours=24),
        )
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


# --- scopes, expiry, and when the API hands out a credential ----------------------------


def _self_issue(client, responder):
    body = {"path": "sso-backup", "reason": "IdP down", "confirmation": "sso-backup"}
    return client.post("/api/v1/grants/self-issue/", {**body, "otp": totp_now(responder)})


def test_a_token_expires_after_90_days_by_default_and_then_says_so(sso_path, responder):
    token, raw = api_token_create(user=responder, name="bot")
    assert token.expires_at - token.created_at == timedelta(days=90)
    assert token.scopes == ["read", "request"]
    event = AuditEvent.objects.get(action="api_token.created")
    assert event.data["expires_at"] == token.expires_at.isoformat()
    assert event.data["scopes"] == ["read", "request"]

    with time_machine.travel(token.expires_at + timedelta(seconds=1)):
        response = api(token=raw).get("/api/v1/grants/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_expired"
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


@pytest.mark.parametrize(
    ("scopes", "method", "url", "body"),
    [
        (["request"], "get", "/api/v1/paths/", None),
        (["request"], "get", "/api/v1/grants/", None),
        (["read"], "post", "/api/v1/grants/", {"path": "sso-backup", "reason": "x"}),
        (["read"], "post", "/api/v1/grants/self-issue/", {"path": "sso-backup"}),
        (["read", "request"], "post", "/api/v1/grants/1/approve/", {"otp": "000000"}),
        (["read"], "post", "/api/v1/grants/1/revoke/", {"reason": "x"}),
    ],
)
def test_each_endpoint_needs_its_scope(sso_path, responder, scopes, method, url, body):
    client = api(responder, scopes=scopes)
    response = client.get(url) if method == "get" else client.post(url, body)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in response["WWW-Authenticate"]
    assert not Grant.objects.exists()


def test_an_ordinary_token_breaks_the_glass_but_the_credential_is_withheld(sso_path, responder):
    response = _self_issue(api(responder, scopes=["read", "request"]), responder)

    grant = response.json()["grant"]
    assert response.status_code == 201 and grant["state"] == "issued"
    assert "credential" not in grant
    assert "lacks the credential scope" in grant["credential_withheld"]


def test_a_long_lived_token_never_receives_a_credential_even_with_the_scope(sso_path, responder):
    # A token from before this rule, or widened behind the service's back.
    token, raw = api_token_create(
        user=responder, name="bot", scopes=API_TOKEN_SCOPES, fresh_otp=True
    )
    ApiToken.objects.filter(pk=token.pk).update(expires_at=token.created_at + timedelta(days=90))

    grant = _self_issue(api(token=raw), responder).json()["grant"]
    assert "credential" not in grant
    assert "at most 24 hours" in grant["credential_withheld"]


def test_a_short_lived_credential_token_from_a_fresh_otp_receives_the_credential(
    sso_path, responder
):
    grant = _self_issue(api(responder, scopes=["request", "credential"]), responder).json()
    assert grant["grant"]["credential"].count(".") == 2


def test_the_credential_scope_needs_a_fresh_otp_and_a_short_life(responder):
    with pytest.raises(GrantError, match="right after entering an OTP"):
        api_token_create(user=responder, name="bot", scopes=["credential"])
    with pytest.raises(GrantError, match="at most 24 hours"):
        api_token_create(
            user=responder,
            name="bot",
            scopes=["credential"],
            fresh_otp=True,
            lifetime=timedelta(days=2),
        )
    token, _ = api_token_create(user=responder, name="bot", scopes=["credential"], fresh_otp=True)
    assert token.expires_at - token.created_at == timedelta(hours=24)
    assert not ApiToken.objects.exclude(pk=token.pk).exists()


def test_unknown_scopes_are_refused(responder):
    with pytest.raises(GrantError, match="Choose scopes among"):
        api_token_create(user=responder, name="bot", scopes=["read", "admin"])


def test_the_console_creates_scoped_expiring_tokens_after_sudo(as_user, responder):
    client = as_user(responder)
    response = client.post(
        "/access/api-tokens/",
        {"name": "collector", "scopes": ["read", "credential"], "lifetime": "8h"},
    )
    token = ApiToken.objects.get()
    assert token.scopes == ["read", "credential"] and token.created_with_fresh_otp
    assert token.expires_at - token.created_at == timedelta(hours=8)
    assert b'id="new-token"' in response.content

    response = client.post(
        "/access/api-tokens/", {"name": "long", "scopes": ["credential"], "lifetime": "90d"}
    )
    assert b"lives at most 24 hours" in response.content
    assert ApiToken.objects.count() == 1
    page = client.get("/access/api-tokens/").content.decode()
    assert "read, credential" in page and "UTC" in page


def test_the_console_asks_for_a_fresh_otp_before_creating_a_token(as_user, responder):
    response = as_user(responder, sudo=False).post(
        "/access/api-tokens/", {"name": "x", "scopes": ["read"], "lifetime": "7d"}
    )
    assert response.status_code == 302 and "/accounts/sudo/" in response["Location"]
    assert not ApiToken.objects.exists()


def test_tokens_from_before_scopes_get_an_expiry_and_lose_nothing_but_credentials(
    transactional_db, responder
):
    """The data migration, run for real on a token row as the previous schema stored it."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    before = [("breakglass", "0007_drill_credential_once_per_participant")]
    executor.migrate(before)
    old_apps = executor.loader.project_state(before).apps
    OldToken = old_apps.get_model("breakglass", "ApiToken")  # noqa: N806
    OldToken.objects.create(user_id=responder.pk, name="old", prefix="bgt_x", token_hash="h" * 64)
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    token = ApiToken.objects.get(name="old")
    assert token.scopes == ["read", "request"]
    assert not token.created_with_fresh_otp
    assert timedelta(days=89) < token.expires_at - token.created_at < timedelta(days=91)


def test_otp_attempts_over_the_api_are_limited_per_client(sso_path, responder, approver, settings):
    settings.BREAKGLASS_RATELIMIT_OTP = (2, 300)
    grant_id = (
        api(responder)
        .post("/api/v1/grants/", {"path": "sso-backup", "reason": "x"})
        .json()["grant"]["id"]
    )
    client = api(approver)
    codes = [
        client.post(f"/api/v1/grants/{grant_id}/approve/", {"otp": "000000"}).json()["error"][
            "code"
        ]
        for _ in range(3)
    ]
    assert codes == ["otp_required", "otp_required", "rate_limited"]
