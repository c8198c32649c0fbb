"""`breakglass serve`: the nginx auth_request sidecar answers 204 or 401 over real HTTP."""

import http.client
import threading
from http.server import ThreadingHTTPServer

import pytest

from breakglass.core.sidecar import BundleSource, handler_for
from tests.verifier import kit


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
