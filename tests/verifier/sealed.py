"""A real sealed kit for tests: a fresh Ed25519 key split into SLIP-39 shares (random,
unlike devkit/keykit.py), certified by the test roots."""

from __future__ import annotations

from breakglass.core.kit import kit_key_split, kit_payload, share_digest
from breakglass.core.signing import bundle_sign
from devkit import keykit as kit

DAY = 86400
CUSTODIANS = ["Alice", "Bob", "Carol"]


def make_kit(kit_id: str, *, now: int, audiences=("sso",)):
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
    )
    document = bundle_sign(payload, [(kit.kid(k), k) for k in kit.ROOT_KEYS[:2]])
    return document, shares
