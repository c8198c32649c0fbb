"""The verifier's local memory: the highest bundle version seen and how often each `jti` was used.

Several verifier processes (one per SSH login, one per request...) may share a state
directory, so every read-modify-write happens under an exclusive `fcntl.flock` on
`<dir>/lock`, and files are replaced atomically (write a temporary file, fsync, rename)
so a crash never leaves a half-written file. Anything unreadable fails closed with
`StateError`: a verifier that cannot remember cannot promise single use or anti-rollback.

The directory must be out of reach of the people whose tokens it counts: whoever can
delete `replay.json` can replay a single-use token, and whoever can put back an old
`bundles.json` can roll the bundle back. So it must be a real directory (not a symlink),
owned by root or by the user running the verifier, and writable by nobody else (no group
or world write bit); anything else is refused with a message that says how to fix it.
Files inside are opened with `O_NOFOLLOW`, and temporary files are created with
`O_EXCL` under an unpredictable name, so a planted symlink cannot redirect a write.
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
from contextlib import contextmanager

from breakglass.core.errors import ConflictingBundle, ReplayedToken, StaleBundle, StateError
from breakglass.core.files import file_write_atomic

BUNDLES_FILE = "bundles.json"
REPLAY_FILE = "replay.json"
LOCK_FILE = "lock"
MAX_STATE_BYTES = 64 * 1024 * 1024


def state_dir_check(state_dir: str | os.PathLike) -> None:
    """Create the state directory (0700) if missing; refuse one others could tamper with."""
    shown = ascii(os.fspath(state_dir))
    try:
        if not os.path.lexists(state_dir):
            os.makedirs(state_dir, mode=0o700, exist_ok=True)
        info = os.lstat(state_dir)
    except OSError as exc:
        raise StateError(f"cannot use state directory {shown}: {exc.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        raise StateError(
            f"state directory {shown} is a symlink; point --state at the real directory"
        )
    if not stat.S_ISDIR(info.st_mode):
        raise StateError(f"state directory {shown} is not a directory")
    euid = os.geteuid()
    if info.st_uid not in (0, euid):
        raise StateError(
            f"state directory {shown} is owned by uid {info.st_uid}, not by root or by the "
            f"verifier's user (uid {euid}); whoever owns it can reset single use "
            f"(chown root {shown} or run the verifier as its owner)"
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise StateError(
            f"state directory {shown} is group- or world-writable "
            f"(mode {stat.S_IMODE(info.st_mode):04o}); others could reset single use "
            f"(chmod 0700 {shown})"
        )


@contextmanager
def _locked(state_dir: str | os.PathLike):
    state_dir_check(state_dir)
    try:
        fd = os.open(
            os.path.join(state_dir, LOCK_FILE), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600
        )
    except OSError as exc:
        raise StateError(
            f"cannot use state directory {os.fspath(state_dir)!a}: {exc.strerror}"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _read(state_dir, name: str) -> dict:
    path = os.path.join(state_dir, name)
    try:
        with open(os.open(path, os.O_RDONLY | os.O_NOFOLLOW), "rb") as handle:
            raw = handle.read(MAX_STATE_BYTES + 1)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise StateError(f"cannot read {path!a}: {exc.strerror}") from None
    try:
        if len(raw) > MAX_STATE_BYTES:
            raise ValueError("too large")
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        raise StateError(f"state file {path!a} is corrupt; refusing to guess") from None
    if not isinstance(data, dict):
        raise StateError(f"state file {path!a} is corrupt; refusing to guess")
    return data


def _write(state_dir, name: str, data: dict) -> None:
    path = os.path.join(state_dir, name)
    try:
        encoded = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
        file_write_atomic(path, encoded, mode=0o600)
    except OSError as exc:
        raise StateError(f"cannot write {path!a}: {exc.strerror}") from None


def bundle_version_check(state_dir, *, issuer: str, version: int, digest: str) -> None:
    """Refuse a bundle older than the newest one seen for this issuer, then remember this one.

    The same version with different content means two different bundles were signed with
    one version number; we keep the first and refuse the other.
    """
    with _locked(state_dir):
        data = _read(state_dir, BUNDLES_FILE)
        seen = data.get(issuer)
        if isinstance(seen, dict) and type(seen.get("version")) is int:
            if version < seen["version"]:
                raise StaleBundle(
                    f"bundle version {version} is older than version {seen['version']} "
                    "already seen by this verifier (rollback refused)"
                )
            if version == seen["version"]:
                if seen.get("digest") != digest:
                    raise ConflictingBundle(
                        f"a different bundle with the same version {version} was already "
                        "seen by this verifier"
                    )
                return
        elif seen is not None:
            raise StateError("bundle state is corrupt; refusing to guess")
        data[issuer] = {"version": version, "digest": digest}
        _write(state_dir, BUNDLES_FILE, data)


def replay_record(state_dir, *, jti: str, keep_until: int, now: int, max_uses: int) -> int:
    """Count one use of `jti`; raise `ReplayedToken` if it was already used `max_uses` times.

    Entries are kept until `keep_until` (the token's expiry plus leeway, after which the
    token is refused anyway) and pruned on the next write. Returns the use number (1-based).
    """
    with _locked(state_dir):
        data = _read(state_dir, REPLAY_FILE)
        entry = data.get(jti)
        uses = 0
        if isinstance(entry, dict) and type(entry.get("uses")) is int:
            uses = entry["uses"]
        elif entry is not None:
            raise StateError("replay state is corrupt; refusing to guess")
        if uses >= max_uses:
            times = "once" if max_uses == 1 else f"{max_uses} times"
            raise ReplayedToken(
                f"token {jti!a} was already used {times} with this verifier (replay refused)"
            )
        pruned = {
            key: value
            for key, value in data.items()
            if isinstance(value, dict) and type(value.get("until")) is int and value["until"] >= now
        }
        pruned[jti] = {"uses": uses + 1, "until": keep_until}
        _write(state_dir, REPLAY_FILE, pruned)
        return uses + 1
