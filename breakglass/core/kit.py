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
                 "custodians": [{"name": "Alice", "digest": "<sha256 of her share>"}, ...],
                 "ssh": [{"path": "bastion-ssh", "ca": "ssh-ed25519 AAAA...",  # optional
                          "principals": ["bg-bastion-ssh"], "source_addresses": [],
                          "force_command": "", "extensions": ["permit-pty"]}]},
     "signatures": [{"kid": "<root kid>", "alg": "EdDSA", "sig": "..."}]}   # >= threshold

Custodian i holds the share with SLIP-39 member index i. A share's digest lets anyone
holding the public part check a share (`breakglass kit check`) without learning it.

A kit token is an ordinary Breakglass token signed by the kit key, with a `kit` claim;
verifiers take the kit's policy from the certificate (docs/operations.md, "The kit").
Each mint is appended to a local journal as a record signed by the kit key, which
`manage.py kit_import` verifies and records when the server is back.

A kit that covers SSH paths (`ssh`) is also an SSH certificate authority for each of them,
with its own CA key per path, derived from the kit key (`kit_ssh_ca_key`): one path's
hosts never trust a certificate minted for another path, as with the server's one CA per
path. Each entry is the path's certificate policy (principals, critical options,
extensions) as the server applies it, frozen and certified by the roots with the kit;
`breakglass sync` installs each live kit's CA line beside the path's own, and puts a
retired kit's CA into the path's KRL (breakglass/core/krl.py).

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
MAX_SSH_PATHS = 64
SSH_ENTRY_MEMBERS = frozenset(
    {"path", "ca", "principals", "source_addresses", "force_command", "extensions"}
)
# HKDF info prefix for a kit's per-path SSH CA key: a key used for nothing else.
_SSH_CA_INFO = b"breakglass kit ssh-ca v1\0"
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
        "ssh",
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
        # SSH path slug -> its entry (the kit's CA line for the path and its policy).
        self.ssh = {entry["path"]: entry for entry in payload.get("ssh", [])}
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
    ssh: list[dict] = (),
) -> dict:
    """The unsigned public part; `custodians` is [(name, share digest)] in share order,
    `ssh` the entries of `kit_ssh_entries` (none: the kit mints tokens only)."""
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
    if ssh:
        payload["ssh"] = sorted(ssh, key=lambda entry: entry["path"])
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
    if "ssh" in payload:
        _ssh_entries_check(payload["ssh"])
    return payload


def _ssh_entries_check(entries: object) -> None:
    """The shape of the `ssh` member, cheaply (verifiers load kits on every login). Its
    values were checked against the path rules when the kit was made (`kit_ssh_entries`)
    and the roots certified them; hosts write `ca` into sshd's TrustedUserCAKeys, so it
    must be exactly one `ssh-ed25519 <base64>` line."""
    if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_SSH_PATHS:
        raise MalformedKit(f"kit ssh must list 1 to {MAX_SSH_PATHS} SSH paths")
    paths = set()
    for entry in entries:
        if not isinstance(entry, dict) or set(entry) != SSH_ENTRY_MEMBERS:
            raise MalformedKit(
                f"each kit ssh entry has exactly {', '.join(sorted(SSH_ENTRY_MEMBERS))}"
            )
        path, ca = entry["path"], entry["ca"]
        if not (_slug(path) and all(c not in ".:" for c in path)) or path in paths:
            raise MalformedKit("kit ssh paths must be distinct path slugs")
        paths.add(path)
        kind, _, blob = ca.partition(" ") if is_text(ca, max_length=200) else ("", "", "")
        if (
            kind != "ssh-ed25519"
            or not blob
            or not all(c.isascii() and (c.isalnum() or c in "+/=") for c in blob)
        ):
            raise MalformedKit(f"kit ssh entry {path!a}: ca must be one ssh-ed25519 key line")
        lists = (entry["principals"], entry["source_addresses"], entry["extensions"])
        if (
            not entry["principals"]
            or not all(isinstance(v, list) and all(is_text(x) for x in v) for v in lists)
            or type(entry["force_command"]) is not str
        ):
            raise MalformedKit(f"kit ssh entry {path!a}: malformed policy")


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


# --- SSH paths ------------------------------------------------------------------------------


def kit_ssh_ca_key(key, path: str):
    """The kit's CA key for one SSH path: HKDF-SHA256 of the kit key's seed, bound to the
    path's slug. Deterministic, so k custodians rebuild it with the kit key; separate per
    path (and from the key that signs tokens and the journal)."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    seed = key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=_SSH_CA_INFO + path.encode()
    ).derive(seed)
    return Ed25519PrivateKey.from_private_bytes(derived)


def kit_ssh_entries(key, policies: list[dict]) -> list[dict]:
    """The kit's `ssh` member, made where the kit key exists (at creation): for each
    {"path", "principals", "source_addresses", "force_command", "extensions"} (the path's
    policy, as the server applies it: `BackupPath.ssh_certificate_policy`), the same
    policy checked by the path rules (breakglass/core/ssh.py) and the kit's CA line."""
    from breakglass.core.ssh import (
        InvalidSshPolicy,
        ssh_force_command_check,
        ssh_principals_check,
        ssh_public_line,
        ssh_source_addresses_check,
    )

    entries = []
    for policy in policies:
        path = policy.get("path") if isinstance(policy, dict) else None
        if not isinstance(path, str) or set(policy) != SSH_ENTRY_MEMBERS - {"ca"}:
            raise KitError(
                "each SSH path policy has exactly path, principals, source_addresses, "
                "force_command and extensions (manage.py export_ssh_policy writes them)",
                "usage",
            )
        try:
            ssh_principals_check(policy["principals"])
            ssh_source_addresses_check(policy["source_addresses"])
            ssh_force_command_check(policy["force_command"])
        except InvalidSshPolicy as exc:
            raise KitError(f"SSH path {path!a}: {exc}", "usage") from None
        entries.append({**policy, "ca": ssh_public_line(kit_ssh_ca_key(key, path))})
    return entries


# --- Minting and the journal ---------------------------------------------------------------


def _mint_window(kit: Kit, *, minutes: int, subject: str, now: int, what: str) -> None:
    """What every kit credential keeps, token or certificate: the kit's own validity,
    its maximum lifetime, and one named subject."""
    if not kit.not_before <= now < kit.not_after:
        raise KitError(
            f"kit {kit.kit_id} is valid from {kit.not_before} to {kit.not_after}", "kit_expired"
        )
    if not 1 <= minutes * 60 <= kit.max_lifetime:
        raise KitError(
            f"kit {kit.kit_id} {what} live at most {kit.max_lifetime // 60} minutes", "kit_policy"
        )
    if not subject.strip() or any(c.isspace() for c in subject):
        raise KitError("--subject must be one name (the account that will log in)", "usage")


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

    _mint_window(kit, minutes=minutes, subject=subject, now=now, what="tokens")
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


def kit_ssh_claims(
    kit: Kit,
    *,
    path: str,
    public_key: str,
    principals: list[str],
    minutes: int,
    subject: str,
    custodians: list[str],
    now: int,
) -> dict:
    """What a kit SSH certificate will say (and its journal record), refusing anything
    beyond the kit's policy up front: a path it does not cover, a principal the path
    does not carry, a lifetime over the kit's maximum, an unusable public key."""
    import secrets

    from cryptography.hazmat.primitives import serialization

    from breakglass.core.ssh import InvalidSshPublicKey, ssh_public_key_parse

    _mint_window(kit, minutes=minutes, subject=subject, now=now, what="certificates")
    entry = kit.ssh.get(path)
    if entry is None:
        covered = ", ".join(kit.ssh) or "no SSH path"
        raise KitError(f"kit {kit.kit_id} covers {covered}, not SSH path {path!r}", "kit_policy")
    beyond = [p for p in principals if p not in entry["principals"]]
    if beyond:
        raise KitError(
            f"kit {kit.kit_id} certificates for {path} carry only "
            f"{', '.join(entry['principals'])}, not {', '.join(beyond)}",
            "kit_policy",
        )
    try:
        key = ssh_public_key_parse(public_key)
    except InvalidSshPublicKey as exc:
        raise KitError(f"--ssh-public-key: {exc}", "usage") from None
    line = key.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode("ascii")
    jti = "kit-" + secrets.token_urlsafe(16)
    return {
        "jti": jti,
        "sub": subject,
        "iat": now,
        "nbf": now,
        "exp": now + minutes * 60,
        "approvers": list(custodians),
        "ssh": {
            "path": path,
            "principals": list(principals or entry["principals"]),
            # Random (no server to number it), in the journal and in sshd's log line.
            "serial": 1 + secrets.randbelow(2**53 - 1),
            # sshd logs the key ID at every login: it names the kit, the person and the mint.
            "key_id": f"breakglass kit {kit.kit_id} {subject} jti={jti}",
            "public_key": line,
        },
    }


def kit_ssh_ca(kit: Kit, key, path: str):
    """The kit's CA key for `path`, proven to be the one its certificate names (so hosts
    trust what it signs); the reconstruction drill checks every covered path this way."""
    from breakglass.core.ssh import ssh_public_line

    ca_key = kit_ssh_ca_key(key, path)
    if ssh_public_line(ca_key) != kit.ssh[path]["ca"]:
        raise KitError(
            f"the rebuilt key does not give kit {kit.kit_id}'s CA for {path}; nothing minted",
            "share_mismatch",
        )
    return ca_key


def kit_ssh_certificate(kit: Kit, key, claims: dict) -> str:
    """Sign the certificate `kit_ssh_claims` described with the kit's CA for its path."""
    from breakglass.core.ssh import ssh_user_certificate

    ssh = claims["ssh"]
    entry = kit.ssh[ssh["path"]]
    return ssh_user_certificate(
        ca_key=kit_ssh_ca(kit, key, ssh["path"]),
        public_key=ssh["public_key"],
        principals=ssh["principals"],
        key_id=ssh["key_id"],
        serial=ssh["serial"],
        valid_after=claims["nbf"],
        valid_before=claims["exp"],
        extensions=tuple(entry["extensions"]),
        source_addresses=tuple(entry["source_addresses"]),
        force_command=entry["force_command"],
    )


def journal_record(kit: Kit, key, *, claims: dict, reason: str, prev: str) -> dict:
    """One signed journal line: what was minted, for whom, why, by which custodians.
    A token's record names its audience and scope; a certificate's, its `ssh` facts
    (path, principals, serial, key ID, the responder's public key)."""
    from breakglass.core.b64 import b64url_encode

    if "ssh" in claims:
        minted = {"ssh": claims["ssh"]}
    else:
        minted = {"aud": claims["aud"], "scope": claims["scope"]}
    record = {
        "type": JOURNAL_TYPE,
        "kit": kit.kit_id,
        "kid": kit.kid,
        "jti": claims["jti"],
        "sub": claims["sub"],
        **minted,
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
            all(is_text(record.get(name)) for name in ("jti", "sub"))
            and _minted_ok(record)
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


def _minted_ok(record: dict) -> bool:
    ssh = record.get("ssh")
    if ssh is None:
        return is_text(record.get("aud")) and is_text(record.get("scope"))
    return (
        isinstance(ssh, dict)
        and all(is_text(ssh.get(name)) for name in ("path", "key_id"))
        and is_text(ssh.get("public_key"), max_length=16 * 1024)
        and is_int(ssh.get("serial"))
        and isinstance(ssh.get("principals"), list)
        and all(is_text(p) for p in ssh["principals"])
    )


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
