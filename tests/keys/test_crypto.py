import pytest

from breakglass.keys.crypto import SecretError, secret_decrypt, secret_encrypt
from breakglass.keys.models import SigningKey
from breakglass.keys.services import _key_private


def test_round_trip_returns_the_plaintext():
    blob = secret_encrypt(b"secret bytes", context="signing-key:a")
    assert secret_decrypt(blob, context="signing-key:a") == b"secret bytes"
    assert b"secret bytes" not in blob


def test_ciphertext_moved_to_another_context_does_not_decrypt():
    blob = secret_encrypt(b"secret bytes", context="signing-key:a")
    with pytest.raises(SecretError, match="moved from another key"):
        secret_decrypt(blob, context="signing-key:b")


def test_tampered_ciphertext_is_reported_clearly():
    blob = bytearray(secret_encrypt(b"secret bytes", context="c"))
    blob[-1] ^= 1
    with pytest.raises(SecretError, match="integrity check"):
        secret_decrypt(bytes(blob), context="c")


def test_wrong_kek_is_named_as_such(settings):
    blob = secret_encrypt(b"secret bytes", context="c")
    settings.BREAKGLASS_KEK = "another-key-encryption-key-entirely-000000"
    with pytest.raises(SecretError, match="different BREAKGLASS_KEK"):
        secret_decrypt(blob, context="c")


def test_missing_or_short_kek_is_refused(settings):
    settings.BREAKGLASS_KEK = "short"
    with pytest.raises(SecretError, match="BREAKGLASS_KEK is missing or too short"):
        secret_encrypt(b"x", context="c")


def test_garbage_is_not_an_envelope():
    with pytest.raises(SecretError, match="not a Breakglass envelope"):
        secret_decrypt(b"plainly not encrypted" * 3, context="c")


def test_any_kek_spelling_derives_a_working_key(settings):
    # Hex, padded base64 and passphrases all work: the key is derived with HKDF.
    for kek in ("00" * 32, "q83vEjRWeJA=q83vEjRWeJA=q83vEjRWeJA=", "a long passphrase, really"):
        settings.BREAKGLASS_KEK = kek
        assert secret_decrypt(secret_encrypt(b"k", context="c"), context="c") == b"k"


def test_stored_private_keys_are_never_raw(trust):
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    assert SigningKey.objects.count() == 4
    for key in SigningKey.objects.all():
        raw = _key_private(key).private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        stored = bytes(key.private_key_encrypted)
        assert raw not in stored
        assert stored.startswith(b"BGK1")


def test_wrong_kek_makes_minting_fail_with_a_clear_error(trust, settings):
    from datetime import timedelta

    from django.utils import timezone

    from breakglass.keys.services import token_mint

    settings.BREAKGLASS_KEK = "another-key-encryption-key-entirely-000000"
    now = timezone.now()
    with pytest.raises(SecretError, match="different BREAKGLASS_KEK"):
        token_mint(
            subject="rita",
            audience="sso",
            scopes=["admin"],
            path="sso-backup",
            incident=None,
            approvers=[],
            drill=False,
            emergency=False,
            not_before=now,
            expires_at=now + timedelta(minutes=5),
            jti="t-1",
        )
