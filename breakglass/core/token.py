"""Verify one compact-JWS Breakglass token against a `VerifiedBundle`.

Checks, in this order (the golden vectors and other implementations rely on it):
 1. shape: ASCII text of at most 16 KiB, three base64url parts;
 2. header: exactly `alg`, `typ` ("JWT") and `kid`; the key is not revoked, is in the
    bundle, and `alg` equals the *bundle's* `alg` for that key (the token never chooses
    its algorithm, so `none`, `HS256`, `jku`, `jwk`, `x5u`, `crit` are all refused);
    `now` is within the key's `[not_before, not_after)` and before the bundle's
    `expires_at` (no leeway: these are our own clock against signed data);
 3. the Ed25519 signature (64 bytes, canonical base64url) over `header.claims`;
 4. claims: strict JSON object with `iss`, `sub`, `aud`, `jti` strings (`aud` a single
    string, never a list), `iat`, `nbf`, `exp` integers; `scope`, `path` strings,
    `incident` string or null, `approvers` list of strings, `drill`/`emergency`
    booleans when present (unknown claims are ignored);
 5. `iss` equals the bundle issuer; 6. `aud` equals the expected audience (and `sub` the
    expected subject, when the caller names one), and a `drill: true` token is refused
    unless the caller allows drills (`allow_drill`);
 7. `nbf`, then `iat`, then `exp`, each with `leeway`;
 8. lifetime `exp - min(iat, nbf)` not above the bundle's `max_token_lifetime`
    (or the caller's stricter cap);
 9. `jti` not in the bundle's revocation list; 10. every required scope present;
11. with a state directory, `jti` used at most `max_uses` times (default once).

A kit token (signed by a kit key the bundle certifies, breakglass/core/kit.py) follows
the same steps with three differences: in 2 the kit's own validity replaces the
issuer key's and the bundle's expiry (an expired bundle still applies its revocations,
and a retired kit's key id is in `revoked_kids`); in 4 its `kit` claim must name that
kit (and only kit keys may sign a `kit` claim); in 8 the kit's `max_lifetime` is the
cap, and its audience and scopes must be within the kit's policy.
"""

from __future__ import annotations

import time

from cryptography.exceptions import InvalidSignature

from breakglass.core._parse import (
    DECODE_ERRORS,
    MAX_SAFE_INTEGER,
    is_text,
    json_decode,
    json_decode_compact,
)
from breakglass.core.b64 import b64url_decode
from breakglass.core.bundle import TOKEN_TYP, TrustedKey, VerifiedBundle
from breakglass.core.errors import (
    AlgorithmMismatch,
    BadHeader,
    BadSignature,
    BeyondKitPolicy,
    DrillNotAllowed,
    ExpiredBundle,
    ExpiredToken,
    IssuedInFuture,
    KeyNotValid,
    LifetimeTooLong,
    MalformedClaims,
    MalformedToken,
    MissingScope,
    NotYetValid,
    RetiredKit,
    RevokedKey,
    RevokedToken,
    UnknownKey,
    WrongAudience,
    WrongIssuer,
    WrongSubject,
)

MAX_TOKEN_LENGTH = 16 * 1024
HEADER_MEMBERS = frozenset({"alg", "typ", "kid"})
# Last character of an 86-character encoding of 64 bytes: its low 4 bits must be zero,
# otherwise several spellings would decode to the same signature (a malleable token).
_SIGNATURE_LAST = frozenset(b"AQgw")
_HEADER_CACHE_LIMIT = 256
# Tokens a bundle remembers passing steps 3 and 4 (a sidecar sees each responder's token
# on every request); past this many the memory is emptied and starts again.
_TOKEN_CACHE_LIMIT = 4096
_ONLY_STR = frozenset({str})


def _shown(value: object, limit: int = 60) -> str:
    """An attacker-controlled value, safe to print: ASCII-escaped and truncated."""
    text = ascii(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _key_for_header(encoded: bytes, bundle: VerifiedBundle) -> TrustedKey:
    try:
        header = json_decode(b64url_decode(encoded), limit=4096)
    except DECODE_ERRORS as exc:
        raise MalformedToken(f"token header is not base64url JSON ({exc})") from None
    if not isinstance(header, dict):
        raise MalformedToken("token header must be a JSON object")
    if header.keys() != HEADER_MEMBERS:
        extra = sorted(set(header) - HEADER_MEMBERS)
        if extra:
            raise BadHeader(
                f"token header member(s) {_shown(extra)} are not allowed; "
                "the header must be exactly alg, typ and kid"
            )
        missing = sorted(HEADER_MEMBERS - set(header))
        raise BadHeader(f"token header lacks {', '.join(missing)}")
    kid, alg = header["kid"], header["alg"]
    if header["typ"] != TOKEN_TYP:
        raise BadHeader(f"token typ must be {TOKEN_TYP!r}, not {_shown(header['typ'])}")
    if not is_text(kid, max_length=256):
        raise BadHeader("token kid must be a non-empty string")
    if kid in bundle.revoked_kids:
        if kid in bundle.kits:
            raise RetiredKit(
                f"kit {bundle.kits[kid].kit.kit_id!a} has been retired "
                f"(bundle version {bundle.version})"
            )
        raise RevokedKey(f"signing key {_shown(kid)} has been revoked")
    key = bundle.keys.get(kid) or bundle.kits.get(kid)
    if key is None:
        raise UnknownKey(f"signing key {_shown(kid)} is not in bundle version {bundle.version}")
    if alg != key.alg:
        raise AlgorithmMismatch(
            f"token alg {_shown(alg)} does not match {key.alg!r} from the bundle for key "
            f"{_shown(kid)}; the algorithm is never taken from the token"
        )
    if not key.supported:
        raise UnknownKey(f"signing key {_shown(kid)} uses {_shown(alg)}, which is not supported")
    if len(bundle.header_cache) < _HEADER_CACHE_LIMIT:
        bundle.header_cache[encoded] = key
    return key


def verify_token(
    token: str,
    bundle: VerifiedBundle,
    *,
    audience: str,
    scope: str | None = None,
    now: int | None = None,
    leeway: int = 60,
    state_dir=None,
    max_uses: int | None = None,
    max_lifetime: int | None = None,
    subject: str | None = None,
    allow_drill: bool = False,
) -> dict:
    """Return the token's claims if it is acceptable for `audience`; raise otherwise.

    `scope` is one required scope or several separated by spaces (all required).
    `subject`, if given, must equal the `sub` claim (e.g. the local account logging in).
    `now` is Unix seconds (default: the clock). With `state_dir`, each `jti` is accepted
    at most `max_uses` times (default 1) across all processes sharing that directory.
    Drill tokens (`drill: true`, minted without approval) are refused with `DrillNotAllowed`
    unless `allow_drill=True`: only a probe endpoint set up for drills should say so.
    Raises a `VerificationError` subclass (`.code`, human `str()`) on any refusal.
    """
    if now is None:
        now = int(time.time())
    if type(token) is str:
        try:
            data = token.encode("ascii")
        except UnicodeEncodeError:
            raise MalformedToken("token must be ASCII text") from None
    elif isinstance(token, bytes | bytearray) and token.isascii():
        data = bytes(token)
    else:
        raise MalformedToken("token must be ASCII text")
    if len(data) > MAX_TOKEN_LENGTH:
        raise MalformedToken(f"token is longer than {MAX_TOKEN_LENGTH} bytes")
    parts = data.split(b".")
    if len(parts) != 3:
        raise MalformedToken("token must have three dot-separated parts")
    header, body, signature = parts

    # 2. The header: usually the issuer's own canonical spelling, looked up directly.
    key = bundle.header_cache.get(header)
    if key is None:
        key = _key_for_header(header, bundle)
    kit = key.kit
    if now < key.not_before or now >= key.not_after:
        raise KeyNotValid(
            f"{'kit ' + repr(kit.kit_id) if kit else 'signing key ' + _shown(key.kid)} is "
            f"valid from {key.not_before} to {key.not_after}, not at {now}"
        )
    if now >= bundle.expires_at and kit is None:
        raise ExpiredBundle(
            f"bundle version {bundle.version} expired at {bundle.expires_at} "
            f"(now {now}); fetch a fresh one"
        )

    # 3-4. The signature, before any claim is believed (it covers the bytes as sent), then
    # the claims' structure. Both depend only on the token's bytes and the key, so a
    # token this bundle has already accepted them for skips them (see `_first_sight`).
    seen = bundle.verified_tokens.get(data)
    if seen is None or seen[0] is not key:
        seen = key, _first_sight(data, header, body, signature, key, bundle)
    claims = _claims_copy(seen[1])
    iss, aud, jti = claims["iss"], claims["aud"], claims["jti"]
    iat, nbf, exp = claims["iat"], claims["nbf"], claims["exp"]
    granted = claims.get("scope", "")

    # 5-6. Who issued it and whom it is for.
    if iss != bundle.issuer:
        raise WrongIssuer(f"token issuer {_shown(iss)} is not {bundle.issuer!r}")
    if aud != audience:
        raise WrongAudience(f"token is for {_shown(aud)}, not for {audience!r}")
    if subject is not None and claims["sub"] != subject:
        raise WrongSubject(f"token is for {_shown(claims['sub'])}, not for {subject!r}")
    if claims.get("drill") is True and not allow_drill:
        raise DrillNotAllowed(
            "token is a drill credential and this verifier does not allow drills (--allow-drill)"
        )

    # 7-8. Time.
    if now < nbf - leeway:
        raise NotYetValid(f"token is not valid before {nbf} (now {now}, leeway {leeway}s)")
    if iat > now + leeway:
        raise IssuedInFuture(f"token is issued at {iat}, in the future (now {now})")
    if now >= exp + leeway:
        raise ExpiredToken(f"token expired at {exp} (now {now}, leeway {leeway}s)")
    if exp <= nbf or exp <= iat:
        raise MalformedClaims("token expires before it becomes valid")
    cap = bundle.max_token_lifetime if kit is None else kit.max_lifetime
    if max_lifetime is not None and max_lifetime < cap:
        cap = max_lifetime
    lifetime = exp - (iat if iat < nbf else nbf)
    if lifetime > cap:
        if kit is not None and cap == kit.max_lifetime:
            raise BeyondKitPolicy(
                f"token lifetime {lifetime}s exceeds the {cap}s cap of kit {kit.kit_id!a}"
            )
        raise LifetimeTooLong(f"token lifetime {lifetime}s exceeds the {cap}s cap")
    if kit is not None:
        if aud not in kit.audiences:
            raise BeyondKitPolicy(f"kit {kit.kit_id!a} does not cover audience {_shown(aud)}")
        for held in granted.split():
            if held not in kit.scopes:
                raise BeyondKitPolicy(f"kit {kit.kit_id!a} does not grant scope {_shown(held)}")

    # 9-10. Revocation and scope.
    if jti in bundle.revoked_jti:
        raise RevokedToken(f"token {_shown(jti)} has been revoked")
    if scope:
        held = granted.split(" ")
        for wanted in scope.split():
            if wanted not in held:
                raise MissingScope(f"token does not grant scope {wanted!r}")

    # 11. Replay, last, so a refused token never consumes a use.
    if state_dir is not None:
        from breakglass.core.state import replay_record

        replay_record(
            state_dir,
            jti=jti,
            keep_until=exp + leeway,
            now=now,
            max_uses=1 if max_uses is None else max_uses,
        )
    return claims


def _first_sight(
    data: bytes,
    header: bytes,
    body: bytes,
    signature: bytes,
    key: TrustedKey,
    bundle: VerifiedBundle,
) -> dict:
    """Steps 3 and 4 for a token this bundle has not accepted them for yet: check the
    signature and the claims' structure, or raise; then remember the token's claims.

    Remembering is sound because both steps are pure functions of the token's bytes and
    the key: Ed25519 verification and JSON parsing give the same answer every time. Every
    other step (key validity, bundle expiry, issuer, audience, time, lifetime,
    revocation, scope, replay) runs on every call, and each new bundle starts with
    nothing remembered. A long-running verifier (the sidecar) sees each responder's
    token on every request, and then pays for the signature once.
    """
    kit = key.kit
    # 3. The signature.
    if len(signature) != 86 or signature[-1] not in _SIGNATURE_LAST:
        raise MalformedToken("token signature must be 64 bytes of canonical base64url")
    try:
        key.verify(b64url_decode(signature), data[: len(header) + len(body) + 1])
    except DECODE_ERRORS:
        raise MalformedToken("token signature is not base64url") from None
    except InvalidSignature:
        raise BadSignature("token signature does not verify with the bundle's key") from None

    # 4. Claims.
    try:
        claims = json_decode_compact(b64url_decode(body), limit=MAX_TOKEN_LENGTH)
    except DECODE_ERRORS as exc:
        raise MalformedToken(f"token claims are not base64url JSON ({exc})") from None
    if type(claims) is not dict:
        raise MalformedToken("token claims must be a JSON object")
    iss = claims.get("iss")
    aud = claims.get("aud")
    jti = claims.get("jti")
    iat = claims.get("iat")
    nbf = claims.get("nbf")
    exp = claims.get("exp")
    if not (
        type(iss) is str
        and type(aud) is str
        and type(jti) is str
        and jti
        and type(claims.get("sub")) is str
        and type(iat) is int
        and type(nbf) is int
        and type(exp) is int
        and 0 <= iat <= MAX_SAFE_INTEGER
        and 0 <= nbf <= MAX_SAFE_INTEGER
        and 0 <= exp <= MAX_SAFE_INTEGER
    ):
        raise MalformedClaims(_claims_problem(claims))
    granted = claims.get("scope", "")
    if type(granted) is not str:
        raise MalformedClaims("scope must be a space-separated string")
    # Optional claims, when present, must have their documented types (docs/token-format.md).
    if (
        type(claims.get("drill", False)) is not bool
        or type(claims.get("emergency", False)) is not bool
        or type(claims.get("path", "")) is not str
        or (claims.get("incident") is not None and type(claims["incident"]) is not str)
    ):
        raise MalformedClaims(
            "claims drill/emergency must be booleans, path a string, incident a string or null"
        )
    if kit is not None and claims.get("kit") != kit.kit_id:
        raise MalformedClaims(f"a token signed by kit {kit.kit_id!a} must carry kit: that id")
    if kit is None and "kit" in claims:
        raise MalformedClaims("only a kit key may sign a token with a kit claim")
    if "approvers" in claims:
        approvers = claims["approvers"]
        if type(approvers) is not list or not set(map(type, approvers)) <= _ONLY_STR:
            raise MalformedClaims("approvers must be a list of strings")
    remembered = bundle.verified_tokens
    if len(remembered) >= _TOKEN_CACHE_LIMIT:
        remembered.clear()
    remembered[data] = (key, claims)
    return claims


def _claims_copy(claims: dict) -> dict:
    """The caller's own copy of remembered claims, with its own approvers list. Values of
    unknown claims (ignored by every check) are shared: read them, do not change them."""
    copy = dict(claims)
    if "approvers" in copy:
        copy["approvers"] = list(copy["approvers"])
    return copy


def _claims_problem(claims: dict) -> str:
    for name in ("iss", "sub", "aud", "jti"):
        value = claims.get(name)
        if name == "aud" and isinstance(value, list):
            return "aud must be a single string, not a list"
        if not is_text(value, max_length=MAX_TOKEN_LENGTH):
            return f"claim {name} must be a non-empty string"
    for name in ("iat", "nbf", "exp"):
        value = claims.get(name)
        if type(value) is not int or not 0 <= value <= MAX_SAFE_INTEGER:
            return f"claim {name} must be an integer Unix time"
    return "claims are malformed"
