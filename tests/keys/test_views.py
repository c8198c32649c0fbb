import base64

import pytest
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)
from django.test import Client

from breakglass.core.b64 import b64url_encode
from breakglass.keys import selectors
from breakglass.keys.models import SigningKey
from breakglass.keys.services import _key_private
from devkit.factories import verified_client


def test_bundle_is_public_json_with_version_etag(trust):
    response = Client().get("/trust/bundle.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["ETag"] == '"v1"'
    assert "max-age" in response["Cache-Control"]
    assert response.json() == selectors.bundle_current()


def test_unchanged_bundle_answers_not_modified(trust):
    response = Client().get("/trust/bundle.json", HTTP_IF_NONE_MATCH='"v1"')
    assert response.status_code == 304


def test_roots_are_public(trust):
    response = Client().get("/trust/roots.json")
    assert response.status_code == 200
    assert response.json() == selectors.roots_export()
    again = Client().get("/trust/roots.json", HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304


def test_nothing_published_yet_is_a_json_404(db):
    for url in ("/trust/bundle.json", "/trust/roots.json"):
        response = Client().get(url)
        assert response.status_code == 404
        assert "error" in response.json()


def test_keys_page_needs_a_verified_session(trust):
    response = Client().get("/trust/keys/")
    assert response.status_code == 302


def test_keys_page_lists_keys_for_verified_users(trust, outsider):
    response = verified_client(outsider).get("/trust/keys/")
    assert response.status_code == 200
    for key in SigningKey.objects.all():
        assert key.kid in response.content.decode()
    assert b"Rotate issuer key" not in response.content


def test_ssh_ca_public_line_is_shown(trust, outsider):
    from breakglass.keys.services import ssh_ca_create

    ca = ssh_ca_create(name="bastion")
    response = verified_client(outsider).get("/trust/keys/")
    assert ca.ssh_public_line().split()[1] in response.content.decode()


def _private_spellings(key: SigningKey) -> list[bytes]:
    private = _key_private(key)
    raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    pem = private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    blob = bytes(key.private_key_encrypted)
    return [
        raw,
        raw.hex().encode(),
        base64.b64encode(raw),
        b64url_encode(raw).encode(),
        pem.splitlines()[1],
        base64.b64encode(blob)[:40],
        blob.hex().encode()[:40],
    ]


def test_private_keys_never_appear_in_any_page_or_response(trust, administrator):
    from breakglass.keys.services import ssh_ca_create

    ssh_ca_create(name="bastion")
    client = verified_client(administrator)
    pages = [
        "/trust/keys/",
        "/trust/bundle.json",
        "/trust/roots.json",
        "/admin/keys/signingkey/",
        "/admin/keys/trustbundle/",
    ]
    pages += [f"/admin/keys/signingkey/{key.pk}/change/" for key in SigningKey.objects.all()]
    bodies = []
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        bodies.append(response.content)
    for key in SigningKey.objects.all():
        for spelling in _private_spellings(key):
            assert all(spelling not in body for body in bodies), key


def test_administrator_rotates_the_issuer_key(trust, administrator):
    old = selectors.issuer_key_signing().kid
    response = verified_client(administrator).post("/trust/keys/rotate-issuer/")
    assert response.status_code == 302
    assert selectors.issuer_key_signing().kid != old
    assert selectors.bundle_latest().version == 2


def test_others_cannot_rotate(trust, responder):
    old = selectors.issuer_key_signing().kid
    response = verified_client(responder).post("/trust/keys/rotate-issuer/")
    assert response.status_code == 403
    assert selectors.issuer_key_signing().kid == old


def test_rotation_needs_a_fresh_otp(trust, administrator):
    response = verified_client(administrator, sudo=False).post("/trust/keys/rotate-issuer/")
    assert response.status_code == 302
    assert "/accounts/sudo" in response["Location"]
    assert selectors.bundle_latest().version == 1


@pytest.mark.parametrize("method", ["get"])
def test_rotation_is_post_only(trust, administrator, method):
    response = getattr(verified_client(administrator), method)("/trust/keys/rotate-issuer/")
    assert response.status_code == 405


def test_rotation_needs_csrf(trust, administrator):
    client = verified_client(administrator)
    client.handler.enforce_csrf_checks = True
    response = client.post("/trust/keys/rotate-issuer/")
    assert response.status_code == 403
    assert selectors.bundle_latest().version == 1
