"""Verify a trust bundle against pinned roots, once, into a `VerifiedBundle` ready for tokens.

Formats: see the docstring of `breakglass/core/signing.py`. Everything expensive (root
signature checks, canonical encoding, building `Ed25519PublicKey` objects) happens here
so that each token verification is one split, one Ed25519 verify and a few comparisons.
"""

from __future__ import annotations

import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from breakglass.core._parse import (
    DECODE_ERRORS,
    ParseError,
    is_int,
    is_text,
    is_time,
    json_decode,
)
from breakglass.core.b64 import b64url_decode, b64url_encode
from breakglass.core.canonical import CanonicalError, canonical_json
from breakglass.core.errors import (
    BadSignature,
    BundleNotYetValid,
    ExpiredBundle,
    InsufficientSignatures,
    MalformedBundle,
    MalformedRoots,
    StaleBundle,
)
from breakglass.core.keys import KeyDecodeError, jwk_thumbprint, public_key_decode, sha256_hex

BUNDLE_TYPE = "breakglass-trust-bundle"
ROOTS_TYPE = "breakglass-roots"
MAX_BUNDLE_BYTES = 8 * 1024 * 1024
MAX_ROOTS_BYTES = 256 * 1024
# The only signature algorithm this verifier implements; a key entry with another `alg`
# is kept (so tokens naming it get a clear error) but can never verify anything.
SUPPORTED = ("OKP", "Ed25519", "EdDSA")
TOKEN_TYP = "JWT"


def _public_key(x: object, *, error: type, where: str) -> tuple[Ed25519PublicKey, bytes]:
    try:
        return public_key_decode(x)
    except KeyDecodeError as exc:
        raise error(f"{where}: {exc}") from None


def _load(document: object, *, limit: int, error: type, what: str) -> dict:
    if isinstance(document, bytes | bytearray | str):
        try:
            document = json_decode(document, limit=limit)
        except ParseError as exc:
            raise error(f"{what} is not valid: {exc}") from None
    if not isinstance(document, dict):
        raise error(f"{what} must be a JSON object")
    return document


class TrustedRoots:
    """The pinned root public keys and the signature threshold."""

    __slots__ = ("threshold", "keys")

    def __init__(self, *, threshold: int, keys: dict[str, tuple[Ed25519PublicKey, bytes]]):
        self.threshold = threshold
        self.keys = keys


def roots_load(roots: object) -> TrustedRoots:
    """Parse and check a roots document (a dict, or its JSON text/bytes)."""
    if isinstance(roots, TrustedRoots):
        return roots
    document = _load(roots, limit=MAX_ROOTS_BYTES, error=MalformedRoots, what="roots file")
    if document.get("type") != ROOTS_TYPE:
        raise MalformedRoots(f"roots file type must be {ROOTS_TYPE!r}")
    entries = document.get("keys")
    if not isinstance(entries, list) or not entries or len(entries) > 256:
        raise MalformedRoots("roots file must list between 1 and 256 keys")
    keys: dict[str, tuple[Ed25519PublicKey, bytes]] = {}
    seen_raw: set[bytes] = set()
    for index, entry in enumerate(entries):
        where = f"root key #{index}"
        if not isinstance(entry, dict):
            raise MalformedRoots(f"{where} must be an object")
        kid = entry.get("kid")
        if not is_text(kid, max_length=256):
            raise MalformedRoots(f"{where}: kid must be a non-empty string")
        if entry.get("kty") != "OKP" or entry.get("crv") != "Ed25519":
            raise MalformedRoots(f"{where}: only OKP/Ed25519 root keys are supported")
        public, raw = _public_key(entry.get("x"), error=MalformedRoots, where=where)
        if kid != jwk_thumbprint(entry["x"]):
            raise MalformedRoots(f"{where}: kid is not the RFC 7638 thumbprint of its key")
        # Two entries for one key would let one root's signature count twice.
        if kid in keys or raw in seen_raw:
            raise MalformedRoots(f"{where}: the same root key or kid is listed twice")
        keys[kid] = (public, raw)
        seen_raw.add(raw)
    threshold = document.get("threshold")
    if not is_int(threshold) or not 1 <= threshold <= len(keys):
        raise MalformedRoots(f"threshold must be an integer between 1 and {len(keys)}")
    return TrustedRoots(threshold=threshold, keys=keys)


class TrustedKey:
    """An issuer key from a verified bundle, ready to verify token signatures."""

    __slots__ = (
        "kid",
        "alg",
        "public_key",
        "verify",
        "not_before",
        "not_after",
        "supported",
        "kit",
    )

    def __init__(self, *, kid, alg, public_key, not_before, not_after, supported, kit=None):
        self.kid = kid
        self.alg = alg
        self.public_key = public_key
        self.verify = public_key.verify if public_key is not None else None
        self.not_before = not_before
        self.not_after = not_after
        self.supported = supported
        # For a kit key: the `breakglass.core.kit.Kit` whose policy its tokens must keep.
        self.kit = kit


class VerifiedBundle:
    """A bundle whose root signatures, structure and freshness were checked.

    Only build it through `verify_bundle`. `header_cache` maps the exact base64url header
    this issuer writes for each usable key to that key, so the usual token skips header
    parsing entirely; any other spelling of the header is parsed and checked in full.
    `verified_tokens` remembers the exact tokens whose signature and claims' structure
    this bundle's key accepted, with those claims (`breakglass.core.token._first_sight`),
    for a long-running verifier that sees the same token on every request.
    """

    __slots__ = (
        "payload",
        "version",
        "issuer",
        "issued_at",
        "expires_at",
        "max_token_lifetime",
        "keys",
        "revoked_jti",
        "revoked_kids",
        "kits",
        "signed_by",
        "digest",
        "header_cache",
        "verified_tokens",
        "audit_head",
    )

    def __init__(self, payload: dict, *, signed_by: list[str]):
        self.payload = payload
        self.signed_by = signed_by
        self.version = payload["version"]
        self.issuer = payload["issuer"]
        self.issued_at = payload["issued_at"]
        self.expires_at = payload["expires_at"]
        self.max_token_lifetime = payload["max_token_lifetime"]
        self.keys: dict[str, TrustedKey] = {}
        # Both lists are optional (absent means empty); _check_payload checked their types.
        self.revoked_jti = frozenset(entry["jti"] for entry in payload.get("revoked_jti", []))
        self.revoked_kids = frozenset(payload.get("revoked_kids", []))
        self.audit_head = audit_head_parse(payload)
        self.header_cache: dict[bytes, TrustedKey] = {}
        self.verified_tokens: dict[bytes, tuple[TrustedKey, dict]] = {}
        self.kits: dict[str, TrustedKey] = {}
        self.digest = ""

    def __repr__(self) -> str:
        return f"<VerifiedBundle {self.issuer} v{self.version} keys={sorted(self.keys)}>"


def audit_head_parse(payload: dict) -> tuple[int, str] | None:
    """The server's audit chain head (seq, hash) when the bundle was signed, or None for
    a bundle from a release before the field (or an empty log).

    Every host that keeps a copy of a bundle thereby keeps a root-signed witness of the
    audit log: `manage.py verify_audit --witness bundle.json` proves the chain still
    contains that head. Old verifiers ignore the member (unknown members are allowed).
    """
    head = payload.get("audit_head")
    if head is None:
        return None
    if (
        not isinstance(head, dict)
        or set(head) != {"seq", "hash"}
        or not is_int(head["seq"])
        or head["seq"] < 1
        or not isinstance(head["hash"], str)
        or len(head["hash"]) != 64
        or set(head["hash"]) - set("0123456789abcdef")
    ):
        raise MalformedBundle("audit_head must be {seq: positive integer, hash: SHA-256 hex}")
    return head["seq"], head["hash"]


def _check_payload(payload: object) -> dict:
    if not isinstance(payload, dict):
        raise MalformedBundle("bundle payload must be an object")
    if payload.get("type") != BUNDLE_TYPE:
        raise MalformedBundle(f"bundle type must be {BUNDLE_TYPE!r}")
    version = payload.get("version")
    if not is_int(version) or version < 1:
        raise MalformedBundle("bundle version must be a positive integer")
    if not is_text(payload.get("issuer"), max_length=2048):
        raise MalformedBundle("bundle issuer must be a non-empty string")
    for name in ("issued_at", "expires_at"):
        if not is_time(payload.get(name)):
            raise MalformedBundle(f"bundle {name} must be an integer Unix time")
    if payload["expires_at"] <= payload["issued_at"]:
        raise MalformedBundle("bundle expires before it is issued")
    lifetime = payload.get("max_token_lifetime")
    if not is_int(lifetime) or lifetime < 1:
        raise MalformedBundle("max_token_lifetime must be a positive integer")
    if not isinstance(payload.get("keys"), list):
        raise MalformedBundle("bundle keys must be a list")
    revoked = payload.get("revoked_jti", [])
    if not isinstance(revoked, list) or not all(
        isinstance(entry, dict) and is_text(entry.get("jti")) and is_time(entry.get("exp"))
        for entry in revoked
    ):
        raise MalformedBundle("revoked_jti must be a list of {jti, exp}")
    revoked_kids = payload.get("revoked_kids", [])
    if not isinstance(revoked_kids, list) or not all(is_text(kid) for kid in revoked_kids):
        raise MalformedBundle("revoked_kids must be a list of key IDs")
    if not isinstance(payload.get("kits", []), list):
        raise MalformedBundle("kits must be a list of kit certificates")
    audit_head_parse(payload)
    return payload


def _add_keys(bundle: VerifiedBundle, entries: list) -> None:
    for index, entry in enumerate(entries):
        where = f"bundle key #{index}"
        if not isinstance(entry, dict):
            raise MalformedBundle(f"{where} must be an object")
        kid = entry.get("kid")
        if not is_text(kid, max_length=256):
            raise MalformedBundle(f"{where}: kid must be a non-empty string")
        if kid in bundle.keys:
            raise MalformedBundle(f"{where}: kid {kid!a} is listed twice")
        alg = entry.get("alg")
        if not is_text(alg, max_length=64):
            raise MalformedBundle(f"{where}: alg must be a string")
        not_before, not_after = entry.get("not_before"), entry.get("not_after")
        if not is_time(not_before) or not is_time(not_after) or not_after < not_before:
            raise MalformedBundle(f"{where}: not_before/not_after must be ordered Unix times")
        supported = (entry.get("kty"), entry.get("crv"), alg) == SUPPORTED
        public_key = None
        if supported:
            public_key, _ = _public_key(entry.get("x"), error=MalformedBundle, where=where)
            if kid != jwk_thumbprint(entry["x"]):
                raise MalformedBundle(f"{where}: kid is not the RFC 7638 thumbprint of its key")
        key = TrustedKey(
            kid=kid,
            alg=alg,
            public_key=public_key,
            not_before=not_before,
            not_after=not_after,
            supported=supported,
        )
        bundle.keys[kid] = key
        if supported and kid not in bundle.revoked_kids:
            header = {"alg": alg, "kid": kid, "typ": TOKEN_TYP}
            bundle.header_cache[b64url_encode(canonical_json(header)).encode()] = key


def _add_kits(bundle: VerifiedBundle, documents: list, trusted: TrustedRoots) -> None:
    """Kit certificates carried by the bundle, each checked against the roots on its own
    (so it still proves the kit after the bundle expires). Imported only when present."""
    from breakglass.core.kit import kit_load

    for index, document in enumerate(documents):
        kit = kit_load(document, trusted)
        if kit.issuer != bundle.issuer:
            raise MalformedBundle(f"kit #{index} ({kit.kit_id!a}) is for another issuer")
        if kit.kid in bundle.kits or kit.kid in bundle.keys:
            raise MalformedBundle(f"kit #{index}: key {kit.kid!a} is listed twice")
        key = TrustedKey(
            kid=kit.kid,
            alg="EdDSA",
            public_key=kit.public_key,
            not_before=kit.not_before,
            not_after=kit.not_after,
            supported=True,
            kit=kit,
        )
        bundle.kits[kit.kid] = key
        if kit.kid not in bundle.revoked_kids:
            header = {"alg": "EdDSA", "kid": kit.kid, "typ": TOKEN_TYP}
            bundle.header_cache[b64url_encode(canonical_json(header)).encode()] = key


def signed_payload(
    document: object, trusted: TrustedRoots, *, error: type, what: str
) -> tuple[dict, list[str]]:
    """Return (payload, root kids that signed it) if `threshold` distinct pinned roots signed
    `canonical_json(payload)`; raise `error` (or a BadSignature) otherwise. Shared by
    bundles and kit certificates, so both follow one threshold rule."""
    if not isinstance(document, dict) or set(document) != {"payload", "signatures"}:
        raise error(f"{what} must have exactly the members payload and signatures")
    payload, signatures = document["payload"], document["signatures"]
    if not isinstance(payload, dict):
        raise error(f"{what} payload must be an object")
    if not isinstance(signatures, list) or not signatures or len(signatures) > 256:
        raise error(f"{what} signatures must be a list of 1 to 256 entries")
    try:
        message = canonical_json(payload)
    except (CanonicalError, ValueError, RecursionError) as exc:
        raise error(f"{what} payload has no canonical encoding: {exc}") from None

    signed_by: dict[bytes, str] = {}
    for index, signature in enumerate(signatures):
        if not isinstance(signature, dict) or set(signature) != {"kid", "alg", "sig"}:
            raise error(f"signature #{index} must have exactly kid, alg and sig")
        kid = signature["kid"]
        if not is_text(kid, max_length=256) or signature["alg"] != "EdDSA":
            raise error(f"signature #{index} must be an EdDSA signature with a kid")
        root = trusted.keys.get(kid)
        if root is None:
            # A root this verifier does not pin (e.g. added after our roots file was
            # exported) neither helps nor hurts; the threshold counts pinned roots only.
            continue
        try:
            raw_signature = b64url_decode(signature["sig"])
            if len(raw_signature) != 64 or b64url_encode(raw_signature) != signature["sig"]:
                raise ParseError("bad length")
            root[0].verify(raw_signature, message)
        except (*DECODE_ERRORS, InvalidSignature):
            # A pinned root's signature that does not verify means the bundle was altered.
            raise BadSignature(
                f"signature #{index} by root {kid!a} does not verify over the payload"
            ) from None
        signed_by.setdefault(root[1], kid)
    if len(signed_by) < trusted.threshold:
        raise InsufficientSignatures(
            f"{what} is signed by {len(signed_by)} distinct root key(s); "
            f"{trusted.threshold} required (the same root key signing twice counts once)"
        )

    return payload, sorted(signed_by.values())


def verify_bundle(
    bundle: object,
    roots: object,
    *,
    now: int | None = None,
    state_dir=None,
    leeway: int = 60,
    min_version: int | None = None,
    allow_expired: bool = False,
) -> VerifiedBundle:
    """Check a trust bundle and return it ready for `verify_token`.

    `bundle` and `roots` may be parsed dicts or raw JSON (bytes/str; raw input is parsed
    strictly, refusing duplicate keys). Accepts only when at least `threshold` *distinct*
    root keys signed the canonical payload, every signature by a pinned root verifies,
    the bundle is current at `now` (not expired, issued at most `leeway` seconds in the
    future), every `kid` is its key's RFC 7638 thumbprint, and its version is not lower
    than `min_version` nor than the highest version recorded in `state_dir` (which is
    then updated). Raises a `VerificationError` subclass otherwise.

    With `allow_expired`, a bundle past `expires_at` is returned rather than refused:
    `verify_token` then accepts only kit tokens (their kits' own validity and policy)
    and still applies the bundle's revocations. Nothing else is relaxed.
    """
    now = int(time.time()) if now is None else now
    trusted = roots_load(roots)
    document = _load(bundle, limit=MAX_BUNDLE_BYTES, error=MalformedBundle, what="bundle")
    payload, signed_by = signed_payload(document, trusted, error=MalformedBundle, what="bundle")

    payload = _check_payload(payload)
    verified = VerifiedBundle(payload, signed_by=signed_by)
    _add_keys(verified, payload["keys"])
    if payload.get("kits"):
        _add_kits(verified, payload["kits"], trusted)

    # An expired bundle still proves what it says (its root signatures verify), so with
    # `allow_expired` it is kept for kit tokens and its revocations; verify_token refuses
    # every other token with ExpiredBundle (docs/operations.md, "When the bundle expires").
    if now >= verified.expires_at and not allow_expired:
        raise ExpiredBundle(
            f"bundle version {verified.version} expired at {verified.expires_at} "
            f"(now {now}); fetch a fresh one"
        )
    if verified.issued_at > now + leeway:
        raise BundleNotYetValid(
            f"bundle is issued at {verified.issued_at}, in the future (now {now}); check the clock"
        )
    if min_version is not None and verified.version < min_version:
        raise StaleBundle(
            f"bundle version {verified.version} is older than the required version {min_version}"
        )
    if state_dir is not None:
        from breakglass.core.state import bundle_version_check

        verified.digest = sha256_hex(canonical_json(payload))
        bundle_version_check(
            state_dir, issuer=verified.issuer, version=verified.version, digest=verified.digest
        )
    return verified
