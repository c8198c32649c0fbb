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

Details the offline verifier (`breakglass/core/bundle.py`) settles, pinned by its golden vectors:
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

import json
import os
from collections.abc import Iterable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from breakglass.core.b64 import b64url_encode
from breakglass.core.bundle import BUNDLE_TYPE, ROOTS_TYPE, roots_load
from breakglass.core.canonical import canonical_json
from breakglass.core.errors import VerificationError
from breakglass.core.files import file_write_atomic
from breakglass.core.keys import key_thumbprint, public_from_x, public_x

# Reading and checking bundles and roots files is the verifier's job (`bundle.py`:
# `roots_load`, `verify_bundle`); this module only writes them.
KIT_TYPE = "breakglass-kit"  # kit certificates (breakglass/core/kit.py) are signed alike


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


# --- Offline signing tool for root holders (hardened mode, docs/trust-bundle.md) -----------
#
#   python -m breakglass.core.signing keygen --out root-alice.pem     # prints the public JWK
#   python -m breakglass.core.signing roots --threshold 2 --out roots.json a.jwk b.jwk c.jwk
#   python -m breakglass.core.signing sign --key root-alice.pem payload.json
#
# It needs only Python and `cryptography`, so it runs on an air-gapped machine.


def _load_private(path: str) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise SystemExit(f"error: cannot read {path}: {exc.strerror}") from None
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SystemExit(f"error: {path}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SystemExit(f"error: {path}: root keys must be Ed25519")
    return key


def _read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except OSError as exc:
        raise SystemExit(f"error: cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise SystemExit(f"error: {path} is not JSON: {exc}") from None


def _write(path: str, data: bytes, mode: int = 0o644) -> None:
    try:
        file_write_atomic(path, data, mode=mode)
    except OSError as exc:
        raise SystemExit(f"error: cannot write {path}: {exc.strerror}") from None


def main(argv: list[str] | None = None) -> int:
    # Imported here, not at the top: the server imports this module for `bundle_sign`
    # on every request path and needs neither.
    import argparse

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
        _write(args.out, pem, mode=0o600)
        print(json.dumps(jwk_entry(key.public_key(), kid=key_thumbprint(key)), sort_keys=True))
        return 0

    if args.command == "roots":
        entries = [_read_json(path) for path in args.jwks]
        try:
            publics = [public_from_x(entry["x"]) for entry in entries]
            # Sorted by kid, like the server's export, so both spell the same file.
            publics.sort(key=key_thumbprint)
            document = roots_document(publics, threshold=args.threshold)
            # The verifier's own check, so the tool never writes a file verifiers refuse
            # (the same key twice, for instance).
            roots_load(document)
        except (KeyError, TypeError, ValueError, VerificationError) as exc:
            raise SystemExit(f"error: {exc}") from None
        _write(args.out, json.dumps(document, indent=2, sort_keys=True).encode() + b"\n")
        print(f"wrote {args.out}: {len(publics)} root keys, threshold {args.threshold}")
        return 0

    # sign
    key = _load_private(args.key)
    document = _read_json(args.payload)
    payload = document.get("payload") if isinstance(document, dict) else None
    # Kit certificates (breakglass kit create) are signed exactly like bundles.
    if not isinstance(payload, dict) or payload.get("type") not in (BUNDLE_TYPE, KIT_TYPE):
        raise SystemExit(
            f"error: {args.payload} is not a bundle payload (bundle_prepare) or a kit "
            "(breakglass kit create)"
        )
    kid = key_thumbprint(key)
    try:
        signed = bundle_sign(payload, [(kid, key)])
    except ValueError as exc:  # CanonicalError: floats or huge integers in the payload
        raise SystemExit(f"error: the payload cannot be signed: {exc}") from None
    others = [s for s in document.get("signatures") or [] if s.get("kid") != kid]
    signed["signatures"] = others + signed["signatures"]
    if payload["type"] == KIT_TYPE and "check_keys" in document:
        signed["check_keys"] = document["check_keys"]  # for kit_register, not for hosts
    out = args.out or args.payload
    _write(out, json.dumps(signed, indent=2, sort_keys=True).encode() + b"\n")
    print(
        f"signed bundle version {payload.get('version')} with root {kid}; "
        f"{len(signed['signatures'])} signature(s) in {out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
