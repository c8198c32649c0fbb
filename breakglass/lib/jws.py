"""Compact JWS with Ed25519 (RFC 7515, RFC 8037 `alg: EdDSA`): the Breakglass token format.

A token is `b64url(header) . b64url(claims) . b64url(signature)`; the signature is
Ed25519 over the ASCII bytes `b64url(header) + "." + b64url(claims)`. The header is
exactly `{"alg": "EdDSA", "typ": "JWT", "kid": <issuer key id>}`. See docs/token-format.md.

This module only builds and splits tokens. Deciding whether a token is acceptable is
the offline verifier's job (`breakglass.verifier`), which never trusts the header.
"""

from __future__ import annotations

import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from breakglass.lib.b64 import b64url_decode, b64url_encode
from breakglass.lib.canonical import canonical_json

ALG = "EdDSA"
TYP = "JWT"
# A realistic token is well under 2 KiB; anything far larger is refused before parsing.
MAX_TOKEN_LENGTH = 16 * 1024


def jws_sign(claims: dict, *, private_key: Ed25519PrivateKey, kid: str) -> str:
    header = {"alg": ALG, "typ": TYP, "kid": kid}
    signing_input = (
        b64url_encode(canonical_json(header)) + "." + b64url_encode(canonical_json(claims))
    )
    signature = private_key.sign(signing_input.encode("ascii"))
    return signing_input + "." + b64url_encode(signature)


class MalformedToken(ValueError):
    """The text is not a well-formed compact JWS."""


def jws_split(token: str) -> tuple[dict, dict, bytes, bytes]:
    """Split a compact JWS into (header, claims, signing_input, signature) without verifying.

    Raises MalformedToken for anything that is not three base64url parts of JSON objects.
    """
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise MalformedToken("token is not a string of reasonable length")
    parts = token.split(".")
    if len(parts) != 3:
        raise MalformedToken("token must have three dot-separated parts")
    try:
        header_raw = b64url_decode(parts[0])
        claims_raw = b64url_decode(parts[1])
        signature = b64url_decode(parts[2])
        header = json.loads(header_raw.decode("utf-8"))
        claims = json.loads(claims_raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise MalformedToken("token parts are not base64url-encoded JSON") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise MalformedToken("token header and claims must be JSON objects")
    return header, claims, (parts[0] + "." + parts[1]).encode("ascii"), signature
