"""A real sealed kit for tests, and what the outage tests share: a fresh Ed25519 key split
into SLIP-39 shares (random, unlike devkit/keykit.py), certified by the test roots; the
environment of a laptop or host while Breakglass is down; the `breakglass` CLI run there;
the bundle a host still holds."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from breakglass.core.kit import kit_key_split, kit_payload, kit_ssh_entries, share_digest
from breakglass.core.signing import bundle_sign
from breakglass.core.ssh import DEFAULT_EXTENSIONS
from devkit import keykit as kit

ROOT = Path(__file__).resolve().parents[2]
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


def make_kit(kit_id: str, *, now: int, audiences=("sso",), scopes=("ssh:login",), ssh=()):
    """(certified kit document, its three shares); `ssh`: policies of SSH paths it covers."""
    key, share_set, shares = kit_key_split(custodians=CUSTODIANS, threshold=2)
    payload = kit_payload(
        kit_id=kit_id,
        issuer=kit.ISSUER,
        public_key=key.public_key(),
        audiences=list(audiences),
        scopes=list(scopes),
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


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when the block ends


def outage_environment(**extra) -> dict:
    """What a custodian's laptop or a host has during the outage: no Django settings and
    a database URL that refuses connections (the CLI must not need either)."""
    return {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{closed_port()}/gone",
        **extra,
    }


def cli(*args, shares: list[str] = (), env=None) -> subprocess.CompletedProcess:
    """`breakglass ARGS` in the outage environment, shares piped one per line."""
    return subprocess.run(
        [sys.executable, "-m", "breakglass.core", *map(str, args)],
        input="".join(share + "\n" for share in shares),
        env=env or outage_environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def host_bundle(
    documents: list[dict], *, now: int, expired: bool, revoked_kids=(), **overrides
) -> bytes:
    """The bundle a host holds, carrying these kit certificates: current (issued a minute
    ago), or expired because Breakglass has been down for three days."""
    issued = now - 4 * DAY if expired else now - 60
    return kit.dumps(
        kit.bundle(
            issued_at=issued,
            expires_at=issued + DAY,
            keys=[kit.key_entry(not_before=now - 30 * DAY, not_after=now + 30 * DAY)],
            kits=list(documents),
            revoked_kids=list(revoked_kids),
            **overrides,
        )
    )


def kit_key(document: dict, shares: list[str]):
    """(the kit, its key rebuilt in memory from the first two shares): what k custodians
    hold together, to sign what the CLI would refuse (a host must refuse it too)."""
    from breakglass.core.kit import kit_key_rebuild, kit_load, share_check

    certified = kit_load(document, None)
    return certified, kit_key_rebuild(certified, [share_check(certified, s) for s in shares[:2]])
