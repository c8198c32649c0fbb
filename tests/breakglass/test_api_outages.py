"""The API during outages: JSON with a stable code, always, and no traceback logged for
a database that is down or kept refusing a change."""

from __future__ import annotations

import socket

import pytest
from django.db import connection

from breakglass.access import grants as grant_rules
from breakglass.project.transient import retry_transient
from tests.breakglass.test_api import api

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_database_that_is_down_gets_json_503_with_a_stable_code(responder, caplog):
    client = api(responder)
    settings_dict = connection.settings_dict
    saved = (settings_dict["HOST"], settings_dict["PORT"])
    connection.close()
    settings_dict["HOST"], settings_dict["PORT"] = "127.0.0.1", str(_closed_port())
    try:
        response = client.get("/api/v1/grants/")
    finally:
        connection.close()
        settings_dict["HOST"], settings_dict["PORT"] = saved
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "database_unavailable"
    assert response["Retry-After"] == "5"
    assert "Traceback" not in caplog.text
    assert "-> 503 database_unavailable (the database is unreachable" in caplog.text


def test_a_change_that_keeps_deadlocking_gets_json_503_after_the_retries(
    sso_path, responder, monkeypatch, settings
):
    settings.BREAKGLASS_TRANSIENT_ATTEMPTS = 2
    attempts = []

    @retry_transient
    def always_the_deadlock_victim(**kwargs):
        attempts.append(1)
        with connection.cursor() as cursor:
            cursor.execute("DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '40P01'; END $$")

    monkeypatch.setattr(grant_rules, "grant_request", always_the_deadlock_victim)
    response = api(responder).post(
        "/api/v1/grants/", {"path": sso_path.slug, "reason": "db migration"}
    )
    assert len(attempts) == 2
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "database_conflict"


def test_an_unknown_api_url_answers_json_not_an_html_page(db):
    response = api().get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
