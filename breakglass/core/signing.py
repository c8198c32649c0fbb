"""The signed trust bundle and the root file verifiers pin it against.

Bundle (JSON document):

    {"payload": {
        "type": "breakglass-trust-bundle",
        "version": 7,                        # only ever goes up
        "issuer": "https://breakglass.example",
        "issued_at": 1764000000, "expires_at": 1764086400,   # Unix seconds
        "max_token_lifetime": 14400,         # seconds; verifiers refuse longer-lived tokens
        "keys": [{"kid": "...", "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA",
                  "x": "<b64url raw public key>", "not_before": 1763..., "not_after": 1765...}],
        "revoked_jti": [{"jti": "...", "exp": 1764...}],   # revoked and not yet expired
        "revoked_kids": ["..."],
        "audit_head": {"seq": 4212, "hash": "<sha256 hex>"}},   # optional: audit witness
     "signatures": [{"kid": "<root kid>", "alg": "EdDSA", "sig": "<b64url Ed25519 signature>"}]}

Each signature is Ed25519 over `canonical_json(payload)`. A bundle is valid when at least
`threshold` signatures from *distinct* root keys listed in the root file verify.

Details the offline verifier (breakglass/verifier) settles, pinned by its golden vectors:
- a signature whose `kid` is not a pinned root is ignored; one by a pinned root that does
  not verify refuses the whole bundle; every `kid` (root and issuer) must equal its key's
  RFC 7638 thumbprint, and one key listed twice in the roots file is refused;
- `revoked_jti` and `revoked_kids` may be omitted (empty); unknown payload members are
  allowed (they are signed) but the document and each signature have exactly the members shown;
- times: a bundle is refused from `expires_at` on and if `issued_at` is more than the
  leeway (60 s) in the future; an issuer key is usable while `not_before <= now < not_after`
  (no leeway: the verifier's own clock against signed data);
- with a state directory, a bundle with the same `version` as one already accepted but a
  different payload is refused (`conflicting_bundle`), as is a lower version (`stale_bundle`).

Roots file: {"type": "breakglass-roots", "threshold": 2,
             "keys": [{"kid": "...", "kty": "OKP", "crv": "Ed25519", "x": "..."}]}
"""

from __future__ import annotations

from collections.abc import Iterable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from breakglass.core.b64 import b64url_decode, b64url_encode
from breakglass.core.canonical import canonical_json
from breakglass.core.keys import key_thumbprint, public_from_x, public_x

BUNDLE_TYPE = "breakglass-trust-bundle"
ROOTS_TYPE = "breakglass-roots"


def jwk_entry(public_key, **extra) -> dict:
    entry = {"kty": "OKP", "crv": "Ed25519", "x": public_x(public_key)}
    entry.update(extra)
    return entry


def bundle_sign(payload: dict, signers: Iterable[tuple[str, Ed25519PrivateKey]]) -> dict:
    """Return the bundle document: `payload` plus one signature per (kid, root private key)."""
    message = canonical_json(payload)
    signatures = [
        {"kid": kid, "alg": "EdDSA", "sig": b64url_encode(key.sign(message))}
        for kid, key in signers
    ]
    return {"payload": payload, "signatures": signatures}


def roots_document(public_keys: Iterable, *, threshold: int) -> dict:
    keys = [jwk_entry(k, kid=key_thumbprint(k)) for k in public_keys]
    if not 1 <= threshold <= len(keys):
        raise ValueError(f"threshold {threshold} must be between 1 and {len(keys)}")
    return {"type": ROOTS_TYPE, "threshold": threshold, "keys": keys}


class BundleSignatureError(ValueError):
    """The bundle's signatures do not meet the root threshold; `str()` says why."""


def roots_public_keys(roots: dict) -> tuple[int, dict]:
    """Read a roots document into (threshold, {kid: Ed25519PublicKey}), checking every kid
    is the key's RFC 7638 thumbprint so a root file cannot alias one key under two kids."""
    if not isinstance(roots, dict) or roots.get("type") != ROOTS_TYPE:
        raise BundleSignatureError("not a breakglass-roots document")
    threshold = roots.get("threshold")
    entries = roots.get("keys")
    if not isinstance(entries, list) or not entries:
        raise BundleSignatureError("the roots document lists no keys")
    keys = {}
    for entry in entries:
        if (
            not isinstance(entry, dict)
            or entry.get("kty") != "OKP"
            or entry.get("crv") != "Ed25519"
        ):
            raise BundleSignatureError("root keys must be Ed25519 OKP JWKs")
        try:
            public = public_from_x(entry.get("x", ""))
        except ValueError as exc:
            raise BundleSignatureError(f"root key {entry.get('kid')!r}: {exc}") from None
        if entry.get("kid") != key_thumbprint(public):
            raise BundleSignatureError(f"root key {entry.get('kid')!r}: kid is not its thumbprint")
        if entry["kid"] in keys:
            raise BundleSignatureError(f"root key {entry['kid']!r} is listed twice")
        keys[entry["kid"]] = public
    if not isinstance(threshold, int) or isinstance(threshold, bool):
        raise BundleSignatureError("the roots threshold must be an integer")
    if not 1 <= threshold <= len(keys):
        raise BundleSignatureError(f"threshold {threshold} must be between 1 and {len(keys)}")
    return threshold, keys


def bundle_signatures_check(document: dict, roots: dict) -> dict:
    """Return the payload if at least `threshold` distinct roots signed it; else raise.

    Only signatures: freshness, version and key validity are the verifier's job
    (`breakglass.core.verify_bundle`).
    """
    threshold, keys = roots_public_keys(roots)
    if not isinstance(document, dict) or not isinstance(document.get("payload"), dict):
        raise BundleSignatureError("not a bundle document (no payload object)")
    payload = document["payload"]
    if payload.get("type") != BUNDLE_TYPE:
        raise BundleSignatureError("the payload is not a breakglass-trust-bundle")
    signatures = document.get("signatures")
    if not isinstance(signatures, list):
        raise BundleSignatureError("the bundle has no signatures list")
    message = canonical_json(payload)
    good: set[str] = set()
    for signature in signatures:
        if not isinstance(signature, dict) or signature.get("alg") != "EdDSA":
            continue
        key = keys.get(signature.get("kid"))
        if key is None:
            continue
        try:
            key.verify(b64url_decode(signature.get("sig", "")), message)
        except (InvalidSignature, ValueError):
            # Like the verifier: a pinned root's bad signature means the payload was altered.
            raise BundleSignatureError(
                f"the signature by root {signature['kid']} does not verify over the payload"
            ) from None
        good.add(signature["kid"])  # a set: one root signing twice still counts once
    if len(good) < threshold:
        raise BundleSignatureError(
            f"only {len(good)} valid signature(s) from distinct root keys; {threshold} required"
        )
    return payload


# --- Offline signing tool for root holders (hardened mode, docs/trust-bundle.md) -----------
#
#   python -m breakglass.core.signing keygen --out root-alice.pem     # prints the public JWK
#   python -m breakglass.core.signing roots --threshold 2 --out roots.json a.jwk b.jwk c.jwk
#   python -m breakglass.core.signing sign --key root-alice.pem payload.json
#
# It needs only Python and `cryptography`, so it runs on an air-gapped machine.


def _load_private(path: str) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    with open(path, "rb") as fh:
        data = fh.read()
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SystemExit(f"error: {path}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SystemExit(f"error: {path}: root keys must be Ed25519")
    return key


def _read_json(path: str) -> dict:
    import json

    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except OSError as exc:
        raise SystemExit(f"error: cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise SystemExit(f"error: {path} is not JSON: {exc}") from None


def _write_atomic(path: str, data: bytes, mode: int = 0o644) -> None:
    import os
    import tempfile

    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json
    import os

    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    parser = argparse.ArgumentParser(
        prog="python -m breakglass.core.signing", description="Offline trust-bundle root tool."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    keygen = sub.add_parser("keygen", help="create a root key; print its public JWK")
    keygen.add_argument("--out", required=True, help="private key PEM to create (mode 0600)")
    roots = sub.add_parser("roots", help="assemble roots.json from public JWK files")
    roots.add_argument("--threshold", type=int, required=True)
    roots.add_argument("--out", required=True)
    roots.add_argument("jwks", nargs="+")
    sign = sub.add_parser("sign", help="add this root's signature to a bundle payload file")
    sign.add_argument("--key", required=True, help="root private key PEM")
    sign.add_argument("--out", help="where to write the signed document (default: in place)")
    sign.add_argument("payload", help="file from `manage.py bundle_prepare`")
    args = parser.parse_args(argv)

    if args.command == "keygen":
        if os.path.exists(args.out):
            raise SystemExit(f"error: {args.out} exists; refusing to overwrite a root key")
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        _write_atomic(args.out, pem, mode=0o600)
        print(json.dumps(jwk_entry(key.public_key(), kid=key_thumbprint(key)), sort_keys=True))
        return 0

    if args.command == "roots":
        entries = [_read_json(path) for path in args.jwks]
        try:
            publics = [public_from_x(entry["x"]) for entry in entries]
            # Sorted by kid, like the server's export, so both spell the same file.
            publics.sort(key=key_thumbprint)
            document = roots_document(publics, threshold=args.threshold)
            roots_public_keys(document)
        except (KeyError, TypeError, ValueError) as exc:
            raise SystemExit(f"error: {exc}") from None
        if len(document["keys"]) != len({k["kid"] for k in document["keys"]}):
            raise SystemExit("error: the same root key is listed twice")
        _write_atomic(args.out, json.dumps(document, indent=2, sort_keys=True).encode() + b"\n")
        print(f"wrote {args.out}: {len(publics)} root keys, threshold {args.threshold}")
        return 0

    # sign
    key = _load_private(args.key)
    document = _read_json(args.payload)
    payload = document.get("payload") if isinstance(document, dict) else None
    if not isinstance(payload, dict) or payload.get("type") != BUNDLE_TYPE:
        raise SystemExit(f"error: {args.payload} is not a bundle payload from bundle_prepare")
    kid = key_thumbprint(key)
    try:
        signed = bundle_sign(payload, [(kid, key)])
    except ValueError as exc:  # CanonicalError: floats or huge integers in the payload
        raise SystemExit(f"error: the payload cannot be signed: {exc}") from None
    others = [s for s in document.get("signatures") or [] if s.get("kid") != kid]
    signed["signatures"] = others + signed["signatures"]
    out = args.out or args.payload
    _write_atomic(out, json.dumps(signed, indent=2, sort_keys=True).encode() + b"\n")
    print(
        f"signed bundle version {payload.get('version')} with root {kid}; "
        f"{len(signed['signatures'])} signature(s) in {out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
