"""The sealed offline kit: emergency credentials when Breakglass itself is down (no Django).

A kit is an Ed25519 key made for the purpose. Its private half exists only as n SLIP-39
word shares held by custodians (any k rebuild it, in memory, on one laptop); the server
and every host keep only its public part, certified by the roots like a bundle:

    {"payload": {"type": "breakglass-kit", "kit": "kit-1", "issuer": "https://...",
                 "kid": "<RFC 7638 thumbprint>", "kty": "OKP", "crv": "Ed25519",
                 "alg": "EdDSA", "x": "<b64url public key>",
                 "not_before": 1764..., "not_after": 1795...,      # the kit's own validity
                 "audiences": ["sso", "db"], "scopes": ["ssh:login"], "max_lifetime": 3600,
                 "threshold": 2, "share_set": 12345,               # SLIP-39 identifier
                 "custodians": [{"name": "Alice", "digest": "<sha256 of her share>"}, ...]},
     "signatures": [{"kid": "<root kid>", "alg": "EdDSA", "sig": "..."}]}   # >= threshold

Custodian i holds the share with SLIP-39 member index i. A share's digest lets anyone
holding the public part check a share (`breakglass kit check`) without learning it.

A kit token is an ordinary Breakglass token signed by the kit key, with a `kit` claim;
verifiers take the kit's policy from the certificate (docs/operations.md, "The kit").
Each mint is appended to a local journal as a record signed by the kit key, which
`manage.py kit_import` verifies and records when the server is back.

Only `breakglass kit ...` imports this module, and it imports `shamir_mnemonic` lazily,
so plain `breakglass verify` stays as light as before.
"""

from __future__ import annotations

import os
import time

from breakglass.core._parse import (
    ParseError,
    is_int,
    is_text,
    is_time,
    json_decode,
)
from breakglass.core.b64 import b64url_decode
from breakglass.core.canonical import canonical_json
from breakglass.core.errors import MalformedKit

# Verifiers import this module (through a bundle that carries kits) on every login, so
# hashlib, secrets, the SLIP-39 code and the signing helpers are imported where used.

KIT_TYPE = "breakglass-kit"
JOURNAL_TYPE = "breakglass-kit-mint"
MAX_KIT_BYTES = 256 * 1024
MAX_CUSTODIANS = 16
# SLIP-39 encrypts the secret with PBKDF2 (10,000 x 2**e rounds). Shares are the only
# copies and there is no passphrase, so extra rounds buy nothing; keep minting fast.
_ITERATION_EXPONENT = 0


class KitError(Exception):
    """A kit operation cannot proceed; `str()` is one line for the person at the keyboard."""

    def __init__(self, message: str, code: str = "kit"):
        super().__init__(message)
        self.code = code


# --- The kit's public part ------------------------------------------------------------------


class Kit:
    """A kit certificate whose root signatures and structure were checked."""

    __slots__ = (
        "payload",
        "kit_id",
        "issuer",
        "kid",
        "public_key",
        "not_before",
        "not_after",
        "audiences",
        "scopes",
        "max_lifetime",
        "threshold",
        "share_set",
        "custodians",
        "signed_by",
    )

    def __init__(self, payload: dict, *, public_key, signed_by: list[str]):
        self.payload = payload
        self.kit_id = payload["kit"]
        self.issuer = payload["issuer"]
        self.kid = payload["kid"]
        self.public_key = public_key
        self.not_before = payload["not_before"]
        self.not_after = payload["not_after"]
        self.audiences = tuple(payload["audiences"])
        self.scopes = tuple(payload["scopes"])
        self.max_lifetime = payload["max_lifetime"]
        self.threshold = payload["threshold"]
        self.share_set = payload["share_set"]
        self.custodians = [entry["name"] for entry in payload["custodians"]]
        self.signed_by = signed_by

    def custodian_digest(self, index: int) -> str:
        return self.payload["custodians"][index]["digest"]

    def __repr__(self) -> str:
        return f"<Kit {self.kit_id} {self.threshold}-of-{len(self.custodians)} {self.kid}>"


def kit_payload(
    *,
    kit_id: str,
    issuer: str,
    public_key,
    audiences: list[str],
    scopes: list[str],
    max_lifetime: int,
    threshold: int,
    custodians: list[tuple[str, str]],
    share_set: int,
    not_before: int,
    not_after: int,
) -> dict:
    """The unsigned public part; `custodians` is [(name, share digest)] in share order."""
    from breakglass.core.keys import key_thumbprint, public_x

    payload = {
        "type": KIT_TYPE,
        "kit": kit_id,
        "issuer": issuer,
        "kid": key_thumbprint(public_key),
        "kty": "OKP",
        "crv": "Ed25519",
        "alg": "EdDSA",
        "x": public_x(public_key),
        "not_before": not_before,
        "not_after": not_after,
        "audiences": sorted(audiences),
        "scopes": sorted(scopes),
        "max_lifetime": max_lifetime,
        "threshold": threshold,
        "share_set": share_set,
        "custodians": [{"name": name, "digest": digest} for name, digest in custodians],
    }
    kit_payload_check(payload)
    return payload


def _slug(value: object) -> bool:
    return is_text(value, max_length=100) and all(
        c.isascii() and (c.isalnum() or c in "-_.:") for c in value
    )


def kit_payload_check(payload: object) -> dict:
    """Raise MalformedKit unless `payload` is a well-formed kit payload."""
    if not isinstance(payload, dict) or payload.get("type") != KIT_TYPE:
        raise MalformedKit(f"kit payload type must be {KIT_TYPE!r}")
    if not _slug(payload.get("kit")):
        raise MalformedKit("kit id must be 1-100 letters, digits or -_.:")
    if not is_text(payload.get("issuer"), max_length=2048):
        raise MalformedKit("kit issuer must be a non-empty string")
    if (payload.get("kty"), payload.get("crv"), payload.get("alg")) != ("OKP", "Ed25519", "EdDSA"):
        raise MalformedKit("kit keys are OKP/Ed25519/EdDSA")
    for name in ("not_before", "not_after"):
        if not is_time(payload.get(name)):
            raise MalformedKit(f"kit {name} must be an integer Unix time")
    if payload["not_after"] <= payload["not_before"]:
        raise MalformedKit("kit expires before it becomes valid")
    for name in ("audiences", "scopes"):
        values = payload.get(name)
        if (
            not isinstance(values, list)
            or not values
            or not all(_slug(v) for v in values)
            or len(set(values)) != len(values)
        ):
            raise MalformedKit(f"kit {name} must be a non-empty list of distinct slugs")
    lifetime = payload.get("max_lifetime")
    if not is_int(lifetime) or not 60 <= lifetime <= 24 * 3600:
        raise MalformedKit("kit max_lifetime must be between 60 and 86400 seconds")
    custodians = payload.get("custodians")
    if not isinstance(custodians, list) or not 2 <= len(custodians) <= MAX_CUSTODIANS:
        raise MalformedKit(f"a kit has between 2 and {MAX_CUSTODIANS} custodians")
    for entry in custodians:
        if (
            not isinstance(entry, dict)
            or set(entry) != {"name", "digest"}
            or not is_text(entry["name"], max_length=200)
            or not is_text(entry["digest"], max_length=64)
        ):
            raise MalformedKit("each custodian is {name, digest}")
    if len({entry["name"] for entry in custodians}) != len(custodians):
        raise MalformedKit("custodian names must be distinct")
    threshold = payload.get("threshold")
    if not is_int(threshold) or not 2 <= threshold <= len(custodians):
        raise MalformedKit(f"kit threshold must be between 2 and {len(custodians)}")
    if not is_int(payload.get("share_set")) or not 0 <= payload["share_set"] < 2**15:
        raise MalformedKit("kit share_set must be a 15-bit SLIP-39 identifier")
    return payload


def kit_load(document: object, roots, *, now: int | None = None):
    """Check a kit certificate (dict or JSON bytes) against pinned roots; return a `Kit`.

    The root threshold rule is the bundle's (`breakglass.core.bundle.signed_payload`).
    `roots=None` checks the structure only: enough for custodians minting (hosts check
    the signatures, and a key that does not match the kit mints nothing).
    `now` given: also refuse a kit outside its validity (KeyNotValid).
    """
    from breakglass.core.bundle import _public_key, roots_load, signed_payload
    from breakglass.core.errors import KeyNotValid
    from breakglass.core.keys import jwk_thumbprint

    if isinstance(document, bytes | bytearray | str):
        try:
            document = json_decode(document, limit=MAX_KIT_BYTES)
        except ParseError as exc:
            raise MalformedKit(f"kit file is not valid: {exc}") from None
    if roots is None:
        if not isinstance(document, dict) or not isinstance(document.get("payload"), dict):
            raise MalformedKit("kit file must have a payload object")
        payload, signed_by = document["payload"], []
    else:
        trusted = roots_load(roots)
        payload, signed_by = signed_payload(document, trusted, error=MalformedKit, what="kit")
    kit_payload_check(payload)
    public_key, _ = _public_key(payload.get("x"), error=MalformedKit, where="kit")
    if payload["kid"] != jwk_thumbprint(payload["x"]):
        raise MalformedKit("kit kid is not the RFC 7638 thumbprint of its key")
    kit = Kit(payload, public_key=public_key, signed_by=signed_by)
    if now is not None and not kit.not_before <= now < kit.not_after:
        raise KeyNotValid(
            f"kit {kit.kit_id} is valid from {kit.not_before} to {kit.not_after}, not at {now}"
        )
    return kit


# --- Shares -----------------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    # Custodians may copy the page as printed, numbers included ("1. apart 2. away ...").
    return [w for w in text.lower().split() if not (w.rstrip(".").isdigit())]


def share_digest(mnemonic: str) -> str:
    """SHA-256 of the share's normalised words. A share carries 256 random bits, so its
    digest reveals nothing useful, yet proves a typed share is exactly the one issued."""
    import hashlib

    from breakglass.core.b64 import b64url_encode

    normal = " ".join(_words(mnemonic))
    return b64url_encode(hashlib.sha256(b"breakglass-kit-share\0" + normal.encode()).digest())


def kit_key_split(*, custodians: list[str], threshold: int):
    """A fresh kit key and its shares: (private key, SLIP-39 identifier, [mnemonic])."""
    import secrets

    import shamir_mnemonic
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    # One person holding the whole key would defeat the point of a kit.
    if not 2 <= threshold <= len(custodians) <= MAX_CUSTODIANS:
        raise KitError(f"a kit needs 2 <= threshold <= custodians <= {MAX_CUSTODIANS}", "usage")
    if len(set(custodians)) != len(custodians):
        raise KitError("custodian names must be distinct", "usage")
    seed = secrets.token_bytes(32)
    mnemonics = shamir_mnemonic.generate_mnemonics(
        1,
        [(threshold, len(custodians))],
        seed,
        b"",
        extendable=False,
        iteration_exponent=_ITERATION_EXPONENT,
    )[0]
    share_set = shamir_mnemonic.Share.from_mnemonic(mnemonics[0]).identifier
    return Ed25519PrivateKey.from_private_bytes(seed), share_set, list(mnemonics)


class CheckedShare:
    __slots__ = ("mnemonic", "index", "custodian")

    def __init__(self, mnemonic: str, index: int, custodian: str):
        self.mnemonic, self.index, self.custodian = mnemonic, index, custodian


def share_check(kit: Kit, text: str, *, position: int = 1) -> CheckedShare:
    """Check one typed share against the kit; raise KitError with one clear line.

    Never echoes the share: messages name the position and the custodian only.
    """
    import secrets

    import shamir_mnemonic
    from shamir_mnemonic.wordlist import WORD_INDEX_MAP

    where = f"share {position}"
    words = _words(text)
    if not words:
        raise KitError(f"{where} is empty", "share_empty")
    for number, word in enumerate(words, 1):
        if word not in WORD_INDEX_MAP:
            raise KitError(
                f"{where}: word {number} is not a SLIP-39 word (mistyped?); check it and retry",
                "share_mistyped",
            )
    mnemonic = " ".join(words)
    try:
        share = shamir_mnemonic.Share.from_mnemonic(mnemonic)
    except shamir_mnemonic.MnemonicError as exc:
        problem = "checksum does not match" if "checksum" in str(exc) else "is not complete"
        raise KitError(
            f"{where}: {problem} (a word mistyped, missing or swapped?); check it and retry",
            "share_mistyped",
        ) from None
    if share.identifier != kit.share_set or not share.index < len(kit.custodians):
        raise KitError(f"{where} belongs to another kit, not {kit.kit_id}", "share_wrong_kit")
    if not secrets.compare_digest(share_digest(mnemonic), kit.custodian_digest(share.index)):
        raise KitError(f"{where} belongs to another kit, not {kit.kit_id}", "share_wrong_kit")
    return CheckedShare(mnemonic, share.index, kit.custodians[share.index])


def kit_key_rebuild(kit: Kit, shares: list[CheckedShare]):
    """Rebuild the kit key in memory from checked shares and prove it is the kit's key."""
    import shamir_mnemonic
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from breakglass.core.keys import public_raw

    distinct = {share.index: share for share in shares}
    if len(distinct) < kit.threshold:
        raise KitError(
            f"too few shares: {len(distinct)} of {kit.threshold} needed for kit {kit.kit_id}",
            "share_too_few",
        )
    chosen = [distinct[index].mnemonic for index in sorted(distinct)][: kit.threshold]
    try:
        seed = shamir_mnemonic.combine_mnemonics(chosen)
    except shamir_mnemonic.MnemonicError:
        raise KitError("the shares do not combine; check each one", "share_mismatch") from None
    key = Ed25519PrivateKey.from_private_bytes(seed)
    if public_raw(key) != public_raw(kit.public_key):
        raise KitError(
            f"the rebuilt key does not match kit {kit.kit_id}; no token minted", "share_mismatch"
        )
    return key


# --- Minting and the journal ---------------------------------------------------------------


def kit_token_claims(
    kit: Kit,
    *,
    audience: str,
    scopes: list[str],
    minutes: int,
    subject: str,
    custodians: list[str],
    now: int,
) -> dict:
    """Claims for a kit token, refusing anything beyond the kit's policy up front."""
    import secrets

    if not kit.not_before <= now < kit.not_after:
        raise KitError(
            f"kit {kit.kit_id} is valid from {kit.not_before} to {kit.not_after}", "kit_expired"
        )
    if audience not in kit.audiences:
        raise KitError(
            f"kit {kit.kit_id} covers {', '.join(kit.audiences)}, not {audience!r}", "kit_policy"
        )
    beyond = [scope for scope in scopes if scope not in kit.scopes]
    if not scopes or beyond:
        raise KitError(
            f"kit {kit.kit_id} grants only {', '.join(kit.scopes)}, not {', '.join(beyond)}",
            "kit_policy",
        )
    if not 1 <= minutes * 60 <= kit.max_lifetime:
        raise KitError(
            f"kit {kit.kit_id} tokens live at most {kit.max_lifetime // 60} minutes", "kit_policy"
        )
    if not subject.strip() or any(c.isspace() for c in subject):
        raise KitError("--subject must be one name (the account that will log in)", "usage")
    return {
        "iss": kit.issuer,
        "sub": subject,
        "aud": audience,
        "iat": now,
        "nbf": now,
        "exp": now + minutes * 60,
        "jti": "kit-" + secrets.token_urlsafe(16),
        "scope": " ".join(scopes),
        "path": "kit:" + kit.kit_id,
        "incident": None,
        "approvers": list(custodians),
        "drill": False,
        "emergency": True,
        "kit": kit.kit_id,
    }


def kit_token_mint(kit: Kit, key, claims: dict) -> str:
    from breakglass.core.jws import jws_sign

    return jws_sign(claims, private_key=key, kid=kit.kid)


def journal_record(kit: Kit, key, *, claims: dict, reason: str, prev: str) -> dict:
    """One signed journal line: what was minted, for whom, why, by which custodians."""
    from breakglass.core.b64 import b64url_encode

    record = {
        "type": JOURNAL_TYPE,
        "kit": kit.kit_id,
        "kid": kit.kid,
        "jti": claims["jti"],
        "sub": claims["sub"],
        "aud": claims["aud"],
        "scope": claims["scope"],
        "iat": claims["iat"],
        "nbf": claims["nbf"],
        "exp": claims["exp"],
        "custodians": claims["approvers"],
        "reason": reason,
        "prev": prev,
    }
    record["sig"] = b64url_encode(key.sign(canonical_json(record)))
    return record


def _line_digest(line: bytes) -> str:
    import hashlib

    from breakglass.core.b64 import b64url_encode

    return b64url_encode(hashlib.sha256(line.rstrip(b"\n")).digest())


def journal_append(path: str, record_for) -> dict:
    """Append one record to the journal (created 0600), chained to the previous line.

    `record_for(prev)` builds the record; the file is locked while it runs, so two mints
    on one laptop never chain to the same line. The line is fsynced before returning:
    the token is printed only once its record is on disk.
    """
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        prev = ""
        if size:
            tail = os.pread(fd, min(size, 64 * 1024), max(0, size - 64 * 1024))
            lines = [line for line in tail.split(b"\n") if line.strip()]
            if lines:
                prev = _line_digest(lines[-1])
        record = record_for(prev)
        line = canonical_json(record) + b"\n"
        if size and not tail.endswith(b"\n"):
            line = b"\n" + line
        os.write(fd, line)
        os.fsync(fd)
        return record
    finally:
        os.close(fd)


def journal_verify(data: bytes, kit: Kit) -> list[dict]:
    """Every record of a journal, each checked against the kit key; raise KitError naming
    the first bad line. Lines of other kits are refused (import one kit's journal at a
    time). The `prev` chain is checked so a line removed from the middle is noticed."""
    from cryptography.exceptions import InvalidSignature

    records = []
    prev = ""
    for number, line in enumerate(data.split(b"\n"), 1):
        if not line.strip():
            continue
        where = f"journal line {number}"
        try:
            record = json_decode(line, limit=64 * 1024)
        except ParseError as exc:
            raise KitError(f"{where} is not JSON ({exc})", "journal") from None
        if not isinstance(record, dict) or record.get("type") != JOURNAL_TYPE:
            raise KitError(f"{where} is not a kit mint record", "journal")
        if record.get("kit") != kit.kit_id or record.get("kid") != kit.kid:
            raise KitError(f"{where} is for kit {record.get('kit')!a}, not {kit.kit_id}", "journal")
        signature = record.pop("sig", None)
        try:
            kit.public_key.verify(b64url_decode(signature or ""), canonical_json(record))
        except (ParseError, InvalidSignature, ValueError):
            raise KitError(
                f"{where}: signature does not verify with the kit key", "journal"
            ) from None
        fields_ok = (
            all(is_text(record.get(name)) for name in ("jti", "sub", "aud", "scope"))
            and all(is_time(record.get(name)) for name in ("iat", "nbf", "exp"))
            and isinstance(record.get("custodians"), list)
            and type(record.get("reason")) is str
        )
        if not fields_ok:
            raise KitError(f"{where} lacks required fields", "journal")
        if record.get("prev") != prev:
            raise KitError(
                f"{where} does not follow the line before it (lines removed?)", "journal"
            )
        prev = _line_digest(line)
        record["sig"] = signature
        records.append(record)
    return records


REBUILD_TYPE = "breakglass-kit-rebuild"
REBUILD_PREFIX = "bgkr1"


def rebuild_proof(kit: Kit, key, *, custodians: list[str], seconds: int, at: int, challenge: str):
    """A line proving k custodians rebuilt the kit key (a reconstruction drill), signed by
    the rebuilt key itself, so the server can check it and nobody can invent one."""
    from breakglass.core.b64 import b64url_encode

    statement = {
        "type": REBUILD_TYPE,
        "kit": kit.kit_id,
        "kid": kit.kid,
        "custodians": custodians,
        "seconds": seconds,
        "at": at,
        "challenge": challenge,
    }
    body = canonical_json(statement)
    return f"{REBUILD_PREFIX}.{b64url_encode(body)}.{b64url_encode(key.sign(body))}"


def rebuild_proof_verify(proof: str, kit: Kit) -> dict:
    """The statement of a proof from `rebuild_proof`, if the kit's key signed it."""
    from cryptography.exceptions import InvalidSignature

    parts = (proof or "").strip().split(".")
    if len(parts) != 3 or parts[0] != REBUILD_PREFIX:
        raise KitError("not a reconstruction proof (breakglass kit rebuild prints one)", "proof")
    try:
        body = b64url_decode(parts[1])
        kit.public_key.verify(b64url_decode(parts[2]), body)
        statement = json_decode(body, limit=16 * 1024)
    except (InvalidSignature, ValueError):  # ValueError: bad base64url or JSON
        raise KitError(f"the proof is not signed by kit {kit.kit_id}'s key", "proof") from None
    if not isinstance(statement, dict) or statement.get("type") != REBUILD_TYPE:
        raise KitError("the proof is not a reconstruction statement", "proof")
    return statement


def now_seconds() -> int:
    return int(time.time())
