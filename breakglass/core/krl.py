"""OpenSSH key revocation lists (KRL), the binary file sshd's `RevokedKeys` reads.

Standard library only. The format is OpenSSH's PROTOCOL.krl:

    header:   "SSHKRL\\n\\0"  uint32 format_version (1)  uint64 krl_version
              uint64 generated_date  uint64 flags (0)  string reserved  string comment
    sections: byte section_type  string section_data

One KRL_SECTION_CERTIFICATES section per CA, whose data is `string ca_key, string
reserved` followed by sub-sections: KRL_SECTION_CERT_SERIAL_LIST (uint64 serials) and
KRL_SECTION_CERT_KEY_ID (strings). sshd refuses any certificate from that CA whose serial
or key ID is listed. One KRL_SECTION_EXPLICIT_KEY section lists whole keys (`string
key_blob` each): sshd refuses a listed key, and any certificate signed by a listed CA key,
which is how a retired sealed kit's CA is revoked on the paths it covered.
Integers are big-endian; a `string` is a uint32 length and bytes.

The output is a pure function of its arguments (sorted, de-duplicated), so the server and
`breakglass sync` build byte-identical files from the same signed bundle entry.
"""

from __future__ import annotations

import binascii
import struct
from collections.abc import Iterable

KRL_MAGIC = b"SSHKRL\n\0"
KRL_FORMAT_VERSION = 1
KRL_SECTION_CERTIFICATES = 1
KRL_SECTION_EXPLICIT_KEY = 2
KRL_SECTION_CERT_SERIAL_LIST = 0x20
KRL_SECTION_CERT_KEY_ID = 0x23
_U64_MAX = 2**64 - 1


class KrlError(ValueError):
    """The KRL cannot be built from these inputs; `str()` says why."""


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def ssh_public_blob(line: str) -> bytes:
    """The wire-format key blob of one `ssh-ed25519 AAAA... comment` line."""
    parts = line.strip().split() if isinstance(line, str) else []
    if len(parts) < 2:
        raise KrlError("the CA key must be one OpenSSH public key line ('ssh-ed25519 AAAA...')")
    try:
        blob = binascii.a2b_base64(parts[1].encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError):
        raise KrlError("the CA key's base64 is not valid") from None
    if len(blob) < 4:
        raise KrlError("the CA key blob is truncated")
    (length,) = struct.unpack(">I", blob[:4])
    if blob[4 : 4 + length] != parts[0].encode("ascii"):
        raise KrlError(f"the CA key blob is not a {parts[0]!a} key")
    return blob


def krl_build(
    *,
    ca_public_line: str,
    serials: Iterable[int] = (),
    key_ids: Iterable[str] = (),
    version: int,
    generated_at: int,
    comment: str = "",
) -> bytes:
    """A KRL revoking, for the CA `ca_public_line`, the certificates with these serials
    and key IDs. With nothing to revoke it is a valid, empty KRL (sshd accepts it)."""
    return krl_build_many(
        revocations=[(ca_public_line, serials, key_ids)],
        version=version,
        generated_at=generated_at,
        comment=comment,
    )


def krl_build_many(
    *,
    revocations: Iterable[tuple[str, Iterable[int], Iterable[str]]],
    version: int,
    generated_at: int,
    comment: str = "",
    revoked_keys: Iterable[str] = (),
) -> bytes:
    """One KRL for several CAs (a host serving several paths: sshd reads one
    `RevokedKeys` file): one certificates section per `(ca_line, serials, key_ids)`, and
    the keys of `revoked_keys` (public key lines) revoked whole."""
    for name, value in (("version", version), ("generated_at", generated_at)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _U64_MAX:
            raise KrlError(f"the KRL {name} must be an integer from 0 to 2**64-1")
    out = bytearray(KRL_MAGIC)
    out += struct.pack(">IQQQ", KRL_FORMAT_VERSION, version, generated_at, 0)
    out += _string(b"")  # reserved
    out += _string(comment.encode("utf-8"))
    for ca_public_line, serials, key_ids in revocations:
        out += _certificates_section(ca_public_line, serials, key_ids)
    blobs = sorted({ssh_public_blob(line) for line in revoked_keys})
    if blobs:
        out += bytes([KRL_SECTION_EXPLICIT_KEY]) + _string(b"".join(map(_string, blobs)))
    return bytes(out)


def _certificates_section(ca_public_line: str, serials: Iterable[int], key_ids: Iterable[str]):
    unique_serials = sorted(set(serials))
    for serial in unique_serials:
        if isinstance(serial, bool) or not isinstance(serial, int) or not 0 <= serial <= _U64_MAX:
            raise KrlError(f"certificate serial {serial!r} does not fit in 64 bits")
    unique_ids = sorted(set(key_ids))
    if any(not isinstance(key_id, str) or not key_id for key_id in unique_ids):
        raise KrlError("key IDs must be non-empty strings")
    ca_blob = ssh_public_blob(ca_public_line)
    if not unique_serials and not unique_ids:
        return b""
    section = bytearray(_string(ca_blob) + _string(b""))
    if unique_serials:
        serial_data = b"".join(struct.pack(">Q", serial) for serial in unique_serials)
        section += bytes([KRL_SECTION_CERT_SERIAL_LIST]) + _string(serial_data)
    if unique_ids:
        id_data = b"".join(_string(key_id.encode("utf-8")) for key_id in unique_ids)
        section += bytes([KRL_SECTION_CERT_KEY_ID]) + _string(id_data)
    return bytes([KRL_SECTION_CERTIFICATES]) + _string(bytes(section))


def krl_from_bundle(payload: dict, path: str) -> bytes:
    """The KRL for SSH path `path` as described by a (verified) bundle payload: the
    path's revoked serials and the CAs of retired kits that covered it. The same bytes on
    the server and on every host that syncs that bundle."""
    return _krl_for(
        payload,
        [path],
        comment=f"breakglass path {path}, trust bundle version {payload['version']}",
    )


def krl_from_bundle_paths(payload: dict, paths: list[str]) -> bytes:
    """One KRL covering several SSH paths of a bundle (for a host serving all of them)."""
    return _krl_for(
        payload,
        paths,
        comment=f"breakglass paths {', '.join(paths)}, trust bundle version {payload['version']}",
    )


def _krl_for(payload: dict, paths: list[str], *, comment: str) -> bytes:
    entries = [ssh_entry(payload, path) for path in paths]
    return krl_build_many(
        revocations=[(entry["ca"], entry["revoked_serials"], ()) for entry in entries],
        revoked_keys=[ca for path in paths for _, ca, retired in kit_cas(payload, path) if retired],
        version=payload["version"],
        generated_at=payload["issued_at"],
        comment=comment,
    )


def trusted_ca_file(payload: dict, paths: list[str]) -> bytes:
    """sshd's `TrustedUserCAKeys` file for these SSH paths of a bundle payload: per path,
    its CA line (a comment, which sshd ignores, once that CA is revoked or retired), then
    the CA line of each live kit covering it, commented with the kit's name. A retired
    kit leaves a comment here and its CA goes into the KRL."""
    lines = []
    for path in paths:
        entry = ssh_entry(payload, path)
        if entry.get("trusted", True) is True:
            lines.append(entry["ca"])
        else:
            lines.append(f"# breakglass: the CA of {path} is revoked or retired")
        for kit_id, ca, retired in kit_cas(payload, path):
            if retired:
                lines.append(f"# breakglass: kit {kit_id} is retired (its CA is in the KRL)")
            else:
                lines.append(f"{ca} breakglass kit {kit_id} for {path}")
    return "".join(line + "\n" for line in lines).encode("ascii")


def kit_cas(payload: dict, path: str) -> list[tuple[str, str, bool]]:
    """(kit id, the kit's CA line for `path`, retired?) for each kit of a (verified)
    bundle payload that covers SSH path `path` (breakglass/core/kit.py, `ssh`)."""
    retired = set(payload.get("revoked_kids") or [])
    found = []
    for document in payload.get("kits") or []:
        kit = document["payload"]
        for entry in kit.get("ssh", []):
            if entry["path"] == path:
                found.append((kit["kit"], entry["ca"], kit["kid"] in retired))
    return found


def ssh_entry(payload: dict, path: str) -> dict:
    """The bundle's entry for one SSH path: {"path", "ca", "trusted", "revoked_serials"}
    ("trusted" false: the CA was revoked or retired and hosts must stop trusting it)."""
    entries = payload.get("ssh")
    if not isinstance(entries, list):
        raise KrlError(f"trust bundle version {payload.get('version')} lists no SSH paths")
    for entry in entries:
        if isinstance(entry, dict) and entry.get("path") == path:
            ca = entry.get("ca")
            if (
                not isinstance(ca, str)
                or not ca.isascii()
                or "\n" in ca
                or not isinstance(entry.get("revoked_serials"), list)
                or not isinstance(entry.get("trusted", True), bool)
            ):
                raise KrlError(f"the bundle's entry for SSH path {path!a} is malformed")
            return entry
    listed = ", ".join(
        sorted(str(e["path"]) for e in entries if isinstance(e, dict) and "path" in e)
    )
    raise KrlError(
        f"trust bundle version {payload.get('version')} has no SSH path {path!a} "
        f"(its SSH paths: {listed or 'none'}; a new path appears in the next bundle)"
    )
