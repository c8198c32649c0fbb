"""Signing keys are decrypted once per process for a bounded time, and a key that is no
longer usable (revoked, retired or rotated out, here or in another process) never signs."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from breakglass.core.b64 import b64url_decode
from breakglass.keys import keycache, selectors, services
from breakglass.keys.crypto import SecretError
from breakglass.keys.models import SigningKey
from devkit.workers import ROOT, worker_env


def mint(jti: str = "t-1") -> str:
    now = timezone.now()
    return services.token_mint(
        subject="rita",
        audience="sso",
        scopes=["admin"],
        path="sso-backup",
        incident=None,
        approvers=[],
        drill=False,
        emergency=True,
        not_before=now,
        expires_at=now + timedelta(minutes=5),
        jti=jti,
    )


def kid_of(token: str) -> str:
    return json.loads(b64url_decode(token.split(".")[0]))["kid"]


@pytest.fixture(autouse=True)
def _empty_cache():
    keycache.key_cache_forget()
    yield
    keycache.key_cache_forget()


@pytest.fixture
def decryptions(monkeypatch):
    """How many times the issuer key was decrypted from the KEK."""
    calls = []
    real = services.secret_decrypt

    def counting(blob, *, context):
        calls.append(context)
        return real(blob, context=context)

    monkeypatch.setattr(services, "secret_decrypt", counting)
    return calls


def test_minting_decrypts_the_issuer_key_once(trust, decryptions):
    kid = selectors.issuer_key_signing().kid
    assert kid_of(mint("t-1")) == kid_of(mint("t-2")) == kid
    assert decryptions == [f"signing-key:{kid}"]
    assert kid in keycache.key_cache_kids()


def test_the_decrypted_key_is_dropped_after_the_cache_period(trust, decryptions, monkeypatch):
    mint("t-1")
    later = keycache._clock() + keycache.KEY_CACHE_SECONDS + 1
    monkeypatch.setattr(keycache, "_clock", lambda: later)
    assert keycache.key_cache_kids() == set()
    mint("t-2")
    assert len(decryptions) == 2


def test_rotating_forgets_the_old_key_and_signs_with_the_new_one(trust):
    old = kid_of(mint("t-1"))
    new = services.issuer_key_rotate().kid
    assert old not in keycache.key_cache_kids()
    assert kid_of(mint("t-2")) == new != old


def test_revoking_forgets_the_key_in_this_process(trust):
    old = kid_of(mint("t-1"))
    services.key_revoke(kid=old, reason="laptop stolen")
    assert old not in keycache.key_cache_kids()
    assert kid_of(mint("t-2")) != old


def test_a_changed_kek_is_not_hidden_by_the_cache(trust, settings):
    mint("t-1")
    settings.BREAKGLASS_KEK = "another-key-encryption-key-entirely-000000"
    with pytest.raises(SecretError, match="different BREAKGLASS_KEK"):
        mint("t-2")


def _in_another_process(code: str) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=worker_env(broker_url="memory://"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.django_db(transaction=True)
def test_a_key_revoked_in_another_process_never_signs_here(settings, tmp_path):
    settings.TRUST_PUBLISH_DIR = tmp_path / "trust"
    services.keys_bootstrap()
    revoked = kid_of(mint("t-1"))
    assert revoked in keycache.key_cache_kids()  # this process holds it decrypted

    _in_another_process(
        "from breakglass.keys.services import key_revoke; "
        f"key_revoke(kid={revoked!r}, reason='compromised')"
    )

    assert SigningKey.objects.get(kid=revoked).state == SigningKey.State.REVOKED
    replacement = kid_of(mint("t-2"))
    assert replacement != revoked
    assert replacement == selectors.issuer_key_signing().kid


@pytest.mark.django_db(transaction=True)
def test_a_key_rotated_out_in_another_process_stops_signing_here(settings, tmp_path):
    settings.TRUST_PUBLISH_DIR = tmp_path / "trust"
    services.keys_bootstrap()
    old = kid_of(mint("t-1"))

    _in_another_process(
        "from breakglass.keys.services import issuer_key_rotate; issuer_key_rotate()"
    )

    assert SigningKey.objects.get(kid=old).state == SigningKey.State.RETIRING
    assert kid_of(mint("t-2")) != old
