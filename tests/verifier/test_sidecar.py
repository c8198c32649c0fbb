"""`breakglass serve`: the nginx auth_request sidecar answers 204 or 401 over real HTTP."""

import http.client
import threading
from http.server import ThreadingHTTPServer

import pytest

from breakglass.core.sidecar import BundleSource, handler_for
from devkit import keykit as kit


@pytest.fixture
def sidecar(tmp_path):
    (tmp_path / "bundle.json").write_bytes(kit.dumps(kit.bundle()))
    (tmp_path / "roots.json").write_bytes(kit.dumps(kit.roots()))
    clock = lambda: kit.NOW  # noqa: E731
    source = BundleSource(
        bundle_path=str(tmp_path / "bundle.json"),
        roots_path=str(tmp_path / "roots.json"),
        state_dir=str(tmp_path / "state"),
        clock=clock,
    )
    assert source.current() is not None  # as `breakglass serve` does before listening
    handler = handler_for(
        source=source,
        audience="sso",
        scope="ssh:login",
        state_dir=str(tmp_path / "state"),
        clock=clock,
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def ask(headers: dict) -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
        connection.request("GET", "/auth", headers=headers)
        response = connection.getresponse()
        response.read()
        connection.close()
        return response

    ask.folder = tmp_path
    ask.port = server.server_address[1]
    yield ask
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def test_a_valid_bearer_token_is_let_through_with_the_responder_named(sidecar):
    response = sidecar({"Authorization": f"Bearer {kit.token()}"})
    assert response.status == 204
    assert response.getheader("X-Breakglass-Subject") == "rita-responder"
    assert response.getheader("X-Breakglass-Drill") == "false"


def test_a_replayed_token_is_refused(sidecar):
    assert sidecar({"X-Breakglass-Token": kit.token()}).status == 204
    response = sidecar({"X-Breakglass-Token": kit.token()})
    assert response.status == 401
    assert response.getheader("X-Breakglass-Error") == "replayed"


@pytest.mark.parametrize(
    "headers, error",
    [
        ({}, "malformed_token"),
        ({"Authorization": "Basic cml0YTpodW50ZXIy"}, "malformed_token"),
        ({"Authorization": f"Bearer {kit.token(aud='vpn')}"}, "wrong_audience"),
        ({"Authorization": f"Bearer {kit.token(scope='admin')}"}, "missing_scope"),
        ({"Authorization": f"Bearer {kit.token()}", "X-Breakglass-Scope": "root"}, "missing_scope"),
        ({"Authorization": "Bearer \u00e9\u00e9.x.y"}, "malformed_token"),
        ({"Authorization": f"Bearer {kit.token(drill=True)}"}, "drill_not_allowed"),
    ],
)
def test_refusals_are_401_with_the_reason(sidecar, headers, error):
    response = sidecar(headers)
    assert response.status == 401
    assert response.getheader("X-Breakglass-Error") == error
    assert response.getheader("WWW-Authenticate") == 'Bearer error="invalid_token"'


def test_a_tampered_new_bundle_does_not_replace_the_good_one(sidecar):
    document = kit.bundle(version=9)
    document["payload"]["revoked_jti"] = []
    (sidecar.folder / "bundle.json").write_bytes(kit.dumps(document))
    assert sidecar({"Authorization": f"Bearer {kit.token(jti='revoked-jti-0001')}"}).status == 401
    response = sidecar({"Authorization": f"Bearer {kit.token()}"})
    assert (response.status, response.getheader("X-Breakglass-Error")) == (204, None)


def test_a_new_good_bundle_is_picked_up(sidecar):
    (sidecar.folder / "bundle.json").write_bytes(
        kit.dumps(
            kit.bundle(version=8, revoked_jti=[{"jti": kit.claims()["jti"], "exp": kit.NOW + 3600}])
        )
    )
    response = sidecar({"Authorization": f"Bearer {kit.token()}"})
    assert response.getheader("X-Breakglass-Error") == "revoked"


def test_an_older_validly_signed_bundle_put_back_is_refused_without_state(tmp_path):
    """The sidecar started without --state keeps the version in use as its floor."""
    (tmp_path / "bundle.json").write_bytes(kit.dumps(kit.bundle(version=7)))
    (tmp_path / "roots.json").write_bytes(kit.dumps(kit.roots()))
    source = BundleSource(
        bundle_path=str(tmp_path / "bundle.json"),
        roots_path=str(tmp_path / "roots.json"),
        clock=lambda: kit.NOW,
    )
    assert source.current().version == 7
    revoking = kit.bundle(version=8, revoked_jti=[{"jti": "j-1", "exp": kit.NOW + 3600}])
    (tmp_path / "bundle.json").write_bytes(kit.dumps(revoking))
    assert source.current().version == 8
    (tmp_path / "bundle.json").write_bytes(kit.dumps(kit.bundle(version=7)))
    assert source.current().version == 8
    assert "older than the required version 8" in source.problem
    (tmp_path / "bundle.json").write_bytes(kit.dumps(kit.bundle(version=8)))  # same version
    assert "j-1" in source.current().revoked_jti
    assert source.problem.startswith("new bundle refused") and "same version 8" in source.problem


def test_a_drill_token_is_refused_unless_the_sidecar_allows_drills(tmp_path):
    (tmp_path / "bundle.json").write_bytes(kit.dumps(kit.bundle()))
    (tmp_path / "roots.json").write_bytes(kit.dumps(kit.roots()))
    source = BundleSource(
        bundle_path=str(tmp_path / "bundle.json"),
        roots_path=str(tmp_path / "roots.json"),
        clock=lambda: kit.NOW,
    )
    for allow_drill, status in ((False, 401), (True, 204)):
        handler = handler_for(
            source=source,
            audience="sso",
            scope=None,
            allow_drill=allow_drill,
            clock=lambda: kit.NOW,
        )
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1])
            connection.request(
                "GET", "/auth", headers={"X-Breakglass-Token": kit.token(drill=True)}
            )
            response = connection.getresponse()
            assert response.status == status
            if status == 401:
                assert response.getheader("X-Breakglass-Error") == "drill_not_allowed"
            else:
                assert response.getheader("X-Breakglass-Drill") == "true"
            connection.close()
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)


@pytest.mark.parametrize(
    "request_line",
    [b"GET /auth HTTP/1.1 x\r\n\r\n", b"GET /auth HTTP/9.9\r\n\r\n", b"\x16\x03\x01\x02\x00\x01"],
)
def test_a_malformed_request_line_gets_a_400_and_no_traceback(sidecar, request_line, capfd):
    import socket

    port = sidecar.port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request_line + b"\r\n")
        answer = connection.makefile("rb").read()
    assert answer.startswith(b"HTTP/1.0 400 ")
    assert b"X-Breakglass-Error: bad_request" in answer
    err = capfd.readouterr().err
    assert "Traceback" not in err and "AttributeError" not in err
    assert '"status": 400' in err


def test_a_keep_alive_connection_gets_an_answer_per_request(sidecar):
    connection = http.client.HTTPConnection("127.0.0.1", sidecar.port, timeout=10)
    try:
        answers = []
        for audience_claim in ("sso", "vpn", "sso"):
            connection.request(
                "GET",
                "/auth",
                headers={
                    "Authorization": f"Bearer {kit.token(aud=audience_claim, jti=f'ka-{len(answers)}')}"
                },
            )
            response = connection.getresponse()
            response.read()
            answers.append((response.version, response.status))
    finally:
        connection.close()
    assert answers == [(11, 204), (11, 401), (11, 204)]


def test_an_http_1_0_request_is_answered_and_closed(sidecar):
    import socket

    token = kit.token(jti="http10-0001")
    with socket.create_connection(("127.0.0.1", sidecar.port), timeout=10) as connection:
        connection.sendall(f"GET /auth HTTP/1.0\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
        answer = connection.makefile("rb").read()  # returns only once the server closes
    assert answer.startswith(b"HTTP/1.1 204 ")


def test_a_request_with_a_body_is_answered_and_its_connection_closed(sidecar):
    import socket

    # The body is never read: were the connection kept, it would be taken for a request.
    smuggled = f"GET /auth HTTP/1.1\r\nAuthorization: Bearer {kit.token(jti='smuggled-01')}\r\n\r\n"
    request = (
        f"POST /auth HTTP/1.1\r\nAuthorization: Bearer {kit.token(aud='vpn')}\r\n"
        f"Content-Length: {len(smuggled)}\r\n\r\n{smuggled}"
    )
    with socket.create_connection(("127.0.0.1", sidecar.port), timeout=10) as connection:
        connection.sendall(request.encode())
        answer = connection.makefile("rb").read()  # returns only once the server closes
    assert answer.startswith(b"HTTP/1.1 401 ")
    assert answer.count(b"HTTP/1.") == 1
