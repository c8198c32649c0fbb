"""A real sealed kit for tests: a fresh Ed25519 key split into SLIP-39 shares (random,
unlike devkit/keykit.py), certified by the test roots."""

from __future__ import annotations

from breakglass.core.kit import kit_key_split, kit_payload, kit_ssh_entries, share_digest
from breakglass.core.ssh import DEFAULT_EXTENSIONS
from breakglass.core.signing import bundle_sign
from devkit import keykit as kit

DAY = 86400
CUSTODIANS = ["Alice", "Bob", "Carol"]


def ssh_policy(path: str, **overrides) -> dict:
    """An SSH path's certificate policy as the server exports it (its defaults)."""
    return {
        "path": path,
        "principals": [f"bg-{path}"],
        "source_addresses": [],
        "force_command": "",
        "extensions": list(DEFAULT_EXTENSIONS),
        **overrides,
    }


def make_kit(kit_id: str, *, now: int, audiences=("sso",), ssh=()):
    """(certified kit document, its three shares); `ssh`: policies of SSH paths it covers."""
    key, share_set, shares = kit_key_split(custodians=CUSTODIANS, threshold=2)
    payload = kit_payload(
        kit_id=kit_id,
        issuer=kit.ISSUER,
        public_key=key.public_key(),
        audiences=list(audiences),
        scopes=["ssh:login"],
        max_lifetime=3600,
        threshold=2,
        custodians=[(n, share_digest(s)) for n, s in zip(CUSTODIANS, shares, strict=True)],
        share_set=share_set,
        not_before=now - DAY,
        not_after=now + 365 * DAY,
        ssh=kit_ssh_entries(key, list(ssh)),
    )
    document = bundle_sign(payload, [(kit.kid(k), k) for k in kit.ROOT_KEYS[:2]])
    return document, shares
