"""`breakglass sync`: fetch the trust bundle onto a host and install it, with the SSH CA
and KRL of the paths this host serves, only when it verifies and is not a rollback.

Standard library HTTP (urllib) and the offline verifier only, so a host needs no Django,
no Celery and no copy of the source tree. Layout under --dir (e.g. /etc/breakglass):

    bundle.json                    the verified bundle (for `breakglass verify`/`serve`)
    ssh/<path>/ca.pub              that path's CA line, and the CA line of each live
                                   sealed kit covering it     (sshd TrustedUserCAKeys)
    ssh/<path>/revoked.krl         that path's KRL, with the CAs of retired kits
                                                              (sshd RevokedKeys)
    ssh/trusted_user_ca_keys       the CA lines of every --ssh-path, for a host serving
    ssh/revoked_keys.krl           several paths (sshd reads one file of each)

The CA lines and the KRL come from the signed bundle's `ssh` entry and the root-certified
kits it carries (built by `breakglass.core.krl`, byte-identical to what the server
publishes), so nothing unsigned is ever installed: someone on the network can delay a revocation by
blocking the server, never undo one by serving an older file.

Every file is written atomically (breakglass/core/files.py: temporary file in the same
folder, fsync, rename, fsync of the folder), mode 0644 in 0755 folders: the files are public, but only the
user running sync (root) may change them. The SSH files are written before bundle.json,
so an interrupted run leaves the old bundle in place and the next run redoes the work.
"""

from __future__ import annotations

import os
import re

MAX_BUNDLE_BYTES = 8 * 1024 * 1024
DEFAULT_TIMEOUT = 20
_SLUG = re.compile(r"^[-a-zA-Z0-9_]{1,100}$")


class SyncError(Exception):
    """Nothing was installed; `str()` is the one line to show. `rejected` is True when the
    server answered but its bundle was refused (exit 1), False when it could not be
    fetched or written (exit 2)."""

    def __init__(self, message: str, *, rejected: bool = False, code: str = "sync_failed"):
        super().__init__(message)
        self.rejected = rejected
        self.code = code


def bundle_url(base: str) -> str:
    base = base.strip().rstrip("/")
    if not base.startswith(("https://", "http://")):
        raise SyncError(f"--url must start with https:// (or http:// on loopback), not {base!a}")
    return f"{base}/trust/bundle.json"


def _fetch(url: str, *, timeout: float) -> bytes:
    # Imported here: urllib.request pulls in hashlib, email and http.client, which the
    # per-login `breakglass verify` must not pay for (tests/verifier/test_imports.py).
    import urllib.error
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 - bundle_url allows http(s) only
        url, headers={"Accept": "application/json", "User-Agent": "breakglass-sync"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked
            body = response.read(MAX_BUNDLE_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise SyncError(f"{url} answered HTTP {exc.code} {exc.reason}", code="http_error") from None
    except urllib.error.URLError as exc:
        reason = (
            exc.reason if isinstance(exc.reason, str) else getattr(exc.reason, "strerror", None)
        )
        raise SyncError(f"cannot reach {url}: {reason or exc.reason}", code="unreachable") from None
    except TimeoutError:
        raise SyncError(
            f"cannot reach {url}: timed out after {timeout:g}s", code="unreachable"
        ) from None
    except OSError as exc:
        raise SyncError(f"cannot reach {url}: {exc.strerror or exc}", code="unreachable") from None
    if len(body) > MAX_BUNDLE_BYTES:
        raise SyncError(f"{url} sent more than {MAX_BUNDLE_BYTES} bytes", code="http_error")
    return body


def installed_version(directory: str) -> int:
    """The version of the bundle installed in `directory` (0 when there is none).

    Not re-verified: whoever can write this folder is root on the host already. A file
    that cannot be parsed counts as none, so a corrupted install heals at the next sync.
    """
    from breakglass.core._parse import json_decode

    try:
        with open(os.path.join(directory, "bundle.json"), "rb") as handle:
            document = json_decode(handle.read(MAX_BUNDLE_BYTES + 1), limit=MAX_BUNDLE_BYTES)
        version = document["payload"]["version"]
    except (OSError, ValueError, KeyError, TypeError):
        return 0
    return version if isinstance(version, int) and not isinstance(version, bool) else 0


def write_atomic(path: str, data: bytes) -> None:
    """The one atomic writer (breakglass/core/files.py), in a 0755 folder, mode 0644."""
    from breakglass.core.files import file_write_atomic

    os.makedirs(os.path.dirname(path) or ".", mode=0o755, exist_ok=True)
    file_write_atomic(path, data, mode=0o644)


def sync(
    *,
    url: str,
    roots: bytes,
    directory: str,
    ssh_paths: list[str],
    timeout: float = DEFAULT_TIMEOUT,
    now: int | None = None,
) -> dict:
    """Fetch, verify and install; return what was done. Raises SyncError (nothing new
    installed) or MalformedRoots (the pinned roots file itself is broken)."""
    from breakglass.core import VerificationError, verify_bundle
    from breakglass.core._parse import json_decode
    from breakglass.core.errors import MalformedRoots
    from breakglass.core.krl import (
        KrlError,
        krl_from_bundle,
        krl_from_bundle_paths,
        trusted_ca_file,
    )

    ssh_paths = list(dict.fromkeys(ssh_paths))
    for slug in ssh_paths:
        if not _SLUG.match(slug):
            raise SyncError(f"--ssh-path needs a path slug, not {slug!a}", code="usage")
    source = bundle_url(url)
    body = _fetch(source, timeout=timeout)
    current = installed_version(directory)
    try:
        bundle = verify_bundle(body, roots, now=now, min_version=current)
    except MalformedRoots:
        raise
    except VerificationError as exc:
        if exc.code == "stale_bundle":
            message = (
                f"refusing bundle version {_version_of(body)} from {source}: version "
                f"{current} is already installed (a rollback would un-revoke credentials)"
            )
        else:
            message = f"refusing the bundle from {source}: {exc.code}: {exc}"
        raise SyncError(message, rejected=True, code=exc.code) from None
    payload = json_decode(body, limit=MAX_BUNDLE_BYTES)["payload"]
    files: dict[str, bytes] = {}
    try:
        for slug in ssh_paths:
            folder = os.path.join(directory, "ssh", slug)
            files[os.path.join(folder, "revoked.krl")] = krl_from_bundle(payload, slug)
            files[os.path.join(folder, "ca.pub")] = trusted_ca_file(payload, [slug])
        if ssh_paths:
            files[os.path.join(directory, "ssh", "trusted_user_ca_keys")] = trusted_ca_file(
                payload, ssh_paths
            )
            files[os.path.join(directory, "ssh", "revoked_keys.krl")] = krl_from_bundle_paths(
                payload, ssh_paths
            )
    except KrlError as exc:
        raise SyncError(f"{exc}; nothing installed", rejected=True, code="no_ssh_path") from None
    try:
        for path, data in files.items():
            write_atomic(path, data)
        if bundle.version > current:
            write_atomic(os.path.join(directory, "bundle.json"), body)
    except OSError as exc:
        raise SyncError(
            f"cannot write to {directory}: {exc.strerror or exc}", code="unwritable"
        ) from None
    return {
        "decision": "installed" if bundle.version > current else "up_to_date",
        "version": bundle.version,
        "previous_version": current,
        "issuer": bundle.issuer,
        "ssh_paths": list(ssh_paths),
        "directory": directory,
    }


def _version_of(body: bytes):
    from breakglass.core._parse import json_decode

    try:
        return json_decode(body, limit=MAX_BUNDLE_BYTES)["payload"]["version"]
    except (ValueError, KeyError, TypeError):
        return "?"
