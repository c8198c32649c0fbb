"""The console while its database is unreachable: a page that says so, with the way to
break the glass without it (the offline kit), status 503, and one log line."""

from __future__ import annotations

import logging
import socket

import pytest
from django.db import connection
from django.test import Client

from tests.project.server import TcpProxy, runserver

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def database_down():
    """This process's connection points at a port nobody listens on, for one test."""
    settings_dict = connection.settings_dict
    saved = (settings_dict["HOST"], settings_dict["PORT"])
    connection.close()
    settings_dict["HOST"], settings_dict["PORT"] = "127.0.0.1", str(_closed_port())
    yield
    connection.close()
    settings_dict["HOST"], settings_dict["PORT"] = saved


def test_a_console_page_says_the_database_is_unreachable_and_names_the_fallback(
    database_down, caplog, settings
):
    settings.BREAKGLASS_OFFLINE_RUNBOOK_URL = "https://wiki.example.test/breakglass-offline"
    client = Client(raise_request_exception=False)
    client.cookies["sessionid"] = "someone-who-was-logged-in"
    with caplog.at_level(logging.INFO):
        response = client.get("/access/")
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    page = response.content.decode()
    assert "<h1>The database is unreachable</h1>" in page
    assert "sealed offline kit" in page
    assert 'href="https://wiki.example.test/breakglass-offline"' in page
    assert "5432" not in page and "connection" not in page.lower().split("<main")[0]
    [line] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert line.getMessage().startswith("GET /access/ -> 503: the database is unreachable")
    assert line.exc_info is None and "Traceback" not in caplog.text


def test_without_a_runbook_address_the_page_names_the_document(database_down, settings):
    settings.BREAKGLASS_OFFLINE_RUNBOOK_URL = ""
    client = Client(raise_request_exception=False)
    client.cookies["sessionid"] = "someone-who-was-logged-in"
    page = client.get("/").content.decode()
    assert "docs/operations.md</em>, sections “Using the kit (the 3 a.m. page)”" in page


def test_other_server_errors_are_still_djangos_500(monkeypatch, caplog, responder):
    from devkit.factories import verified_client

    def broken(request):
        raise RuntimeError("a bug")

    monkeypatch.setattr("breakglass.project.dashboard.overview_for", lambda **kw: broken(None))
    client = verified_client(responder)
    client.raise_request_exception = False
    response = client.get("/")
    assert response.status_code == 500
    assert b"Something went wrong" in response.content
    assert any(r.exc_info for r in caplog.records)  # a bug keeps its traceback


def _disconnect_others() -> None:
    """End the server's sessions the relay cut off, so the test database can be dropped
    (PostgreSQL may not have noticed the closed sockets yet)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


def test_a_real_server_losing_its_database_answers_503_in_one_line():
    settings_dict = connection.settings_dict
    proxy = TcpProxy(settings_dict["HOST"] or "127.0.0.1", int(settings_dict["PORT"] or 5432))
    proxy.start()
    user = settings_dict["USER"]
    database_url = f"postgres://{user}@127.0.0.1:{proxy.port}/{settings_dict['NAME']}"
    with runserver(DATABASE_URL=database_url) as server:
        status, _headers, body = server.get("/", cookie="sessionid=stale-session-key")
        assert status == 200 and "Log in" in body  # up: an unknown session is sent to log in
        proxy.stop()
        status, headers, body = server.get("/access/", cookie="sessionid=stale-session-key")
        assert status == 503
        assert "The database is unreachable" in body and "offline kit" in body
        status, _headers, api_body = server.get(
            "/api/v1/grants/", Authorization="Bearer bgt_some-token"
        )
    _disconnect_others()
    assert status == 503 and "database_unavailable" in api_body
    lines = [line for line in server.stderr.splitlines() if "GET /access/ -> 503" in line]
    assert len(lines) == 1, server.stderr
    assert "the database is unreachable" in lines[0]
    assert len([line for line in server.stderr.splitlines() if "/api/v1/grants/ ->" in line]) == 1
    assert "django.request" not in server.stderr
    assert "Traceback" not in server.stderr
