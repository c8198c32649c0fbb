"""Compact JWS with Ed25519 (RFC 7515, RFC 8037 `alg: EdDSA`): the Breakglass token format.

A token is `b64url(header) . b64url(claims) . b64url(signature)`; the signature is
Ed25519 over the ASCII bytes `b64url(header) + "." + b64url(claims)`. The header is
exactly `{"alg": "EdDSA", "typ": "JWT", "kid": <issuer key id>}`. See docs/token-format.md.

This module only builds tokens. Parsing and deciding whether a token is acceptable is the
offline verifier's job (`breakglass.core`), which is strict and never trusts the header.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from breakglass.core.b64 import b64url_encode
from breakglass.core.canonical import canonical_json

ALG = "EdDSA"
TYP = "JWT"


def jws_sign(claims: dict, *, private_key: Ed25519PrivateKey, kid: str) -> str:
    header = {"alg": ALG, "typ": TYP, "kid": kid}
    signing_input = (
        b64url_encode(canonical_json(header)) + "." + b64url_encode(canonical_json(claims))
    )
    signature = private_key.sign(signing_input.encode("ascii"))
    return signing_input + "." + b64url_encode(signature)
