"""Breakglass tokens are standard EdDSA JWS: stock JOSE libraries verify them, and tokens a
stock library signs (same header, same claims) pass the Breakglass verifier."""

import json

import jwt
import pytest
from jwcrypto import jwk
from jwcrypto import jwt as jwcrypto_jwt

from breakglass.core import AlgorithmMismatch, BadHeader
from devkit import keykit as kit


def issuer_jwk(private=False) -> jwk.JWK:
    entry = kit.key_entry()
    if private:
        from cryptography.hazmat.primitives.serialization import (
            Encoding,
            NoEncryption,
            PrivateFormat,
        )

        from breakglass.core.b64 import b64url_encode

        raw = kit.ISSUER_KEY.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return jwk.JWK(kty="OKP", crv="Ed25519", x=entry["x"], d=b64url_encode(raw))
    return jwk.JWK(kty="OKP", crv="Ed25519", x=entry["x"])


def test_pyjwt_verifies_a_breakglass_token_with_the_bundle_key():
    claims = jwt.decode(
        kit.token(iat=kit.NOW, nbf=kit.NOW, exp=2**31),
        key=kit.ISSUER_KEY.public_key(),
        algorithms=["EdDSA"],
        audience="sso",
        issuer=kit.ISSUER,
        options={"verify_iat": False},
    )
    assert claims["sub"] == "rita-responder"


def test_jwcrypto_verifies_a_breakglass_token_with_the_bundle_jwk():
    token = jwcrypto_jwt.JWT(
        jwt=kit.token(iat=kit.NOW, nbf=kit.NOW, exp=2**31), key=issuer_jwk(), algs=["EdDSA"]
    )
    assert json.loads(token.claims)["aud"] == "sso"


def test_a_token_signed_by_jwcrypto_passes_the_breakglass_verifier(verify):
    token = jwcrypto_jwt.JWT(
        header={"alg": "EdDSA", "typ": "JWT", "kid": kit.ISSUER_KID}, claims=kit.claims()
    )
    token.make_signed_token(issuer_jwk(private=True))
    assert verify(token.serialize())["jti"]


def test_a_pyjwt_token_with_extra_header_members_is_refused(verify):
    token = jwt.encode(
        kit.claims(),
        kit.ISSUER_KEY,
        algorithm="EdDSA",
        headers={"kid": kit.ISSUER_KID, "cty": "JWT"},
    )
    with pytest.raises(BadHeader):
        verify(token)


def test_a_pyjwt_hs256_token_keyed_with_the_public_key_is_refused(verify):
    token = jwt.encode(
        kit.claims(), kit.key_entry()["x"], algorithm="HS256", headers={"kid": kit.ISSUER_KID}
    )
    with pytest.raises(AlgorithmMismatch):
        verify(token)
