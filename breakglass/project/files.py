"""Files on disk: the data folder is private to the service account, public artefacts
(the published trust bundle, the static status site) are world-readable on purpose.

The SQLite database, the development SECRET_KEY and KEK, the file broker's messages and
saved mail all live in `BREAKGLASS_DATA_DIR`. Another local user who can read the
database can copy a session key and walk into `/admin/`, so the product sets its own
umask (0o077) at every entry point (`manage.py`, `breakglass.project.wsgi`,
`breakglass.project.celery`), before settings create anything: every file it creates is
0600 and every folder 0700, whatever umask the operator's shell or unit file had. (Not
in settings themselves: a test run or another program importing them keeps its umask.) `manage.py check` warns
(`breakglass.W001`) about anything in the folder that is looser, e.g. left over from an
older release.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077
# Enough to name the problem without walking a huge mail or broker folder on every check.
_REPORT_LIMIT = 5
_WALK_LIMIT = 20_000


def private_umask_apply() -> None:
    """Make everything this process creates private to its user (0600 files, 0700 dirs)."""
    os.umask(PRIVATE_UMASK)


def private_dir_make(path: Path) -> None:
    """Create a folder only its owner can enter (0700), whatever the umask: settings
    create the data folder before any entry point could, e.g. under a test runner.
    Missing parents are created the same way. An existing folder this account owns is
    closed to others too (only the folder: loose files inside are `check`'s to report,
    and published folders inside keep their modes but are no longer reachable by other
    accounts, so point TRUST_PUBLISH_DIR and STATUS_SITE_DIR elsewhere if they must be)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        info = None
    if info is not None:
        if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & 0o077:
            os.chmod(path, stat.S_IMODE(info.st_mode) & 0o700)
        return
    missing = []
    for parent in [path, *path.parents]:
        if parent.exists():
            break
        missing.append(parent)
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)


def public_dir_make(path: Path) -> None:
    """Create a folder meant to be served (trust bundle, status site) as 0755: the private
    umask would otherwise make it unreadable to the web server. Existing folders keep the
    mode their operator gave them."""
    missing = []
    for parent in [path, *path.parents]:
        if parent.exists():
            break
        missing.append(parent)
    path.mkdir(parents=True, exist_ok=True)
    for created in missing:
        os.chmod(created, 0o755)  # noqa: S103 - served to everyone on purpose


def loose_permissions(
    data_dir: Path, *, public: list[Path] = (), extra_files: list[Path] = ()
) -> list[str]:
    """Paths under `data_dir` (and `extra_files`) that group or others can access, as
    "path (mode)" strings. Folders in `public` are skipped: they are served on purpose."""
    public = [p.resolve() for p in public]
    found: list[str] = []

    def check(path: Path) -> None:
        try:
            mode = path.lstat().st_mode
        except OSError:
            return
        if stat.S_ISLNK(mode):
            return
        if mode & 0o077:
            found.append(f"{path} ({stat.filemode(mode)})")

    if not data_dir.exists():
        return []
    check(data_dir)
    for extra in extra_files:
        check(extra)
    seen = 0
    for root, dirs, files in os.walk(data_dir):
        root_path = Path(root)
        dirs[:] = [d for d in dirs if (root_path / d).resolve() not in public]
        for name in [*dirs, *files]:
            check(root_path / name)
            seen += 1
        if seen > _WALK_LIMIT:
            break
    return list(dict.fromkeys(found))


def data_dir_permission_warnings(**kwargs):
    """The registered system check (`breakglass.W001`)."""
    from django.conf import settings
    from django.core.checks import Warning

    data_dir = Path(settings.DATA_DIR)
    public = [
        Path(p)
        for p in (settings.TRUST_PUBLISH_DIR, settings.STATUS_SITE_DIR, settings.STATIC_ROOT)
        if p
    ]
    extra = []
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3") and str(database["NAME"]) != ":memory:":
        extra.append(Path(database["NAME"]))
    loose = loose_permissions(data_dir, public=public, extra_files=extra)
    if not loose:
        return []
    shown = ", ".join(loose[:_REPORT_LIMIT]) + (
        f" and {len(loose) - _REPORT_LIMIT} more" if len(loose) > _REPORT_LIMIT else ""
    )
    return [
        Warning(
            f"files holding secrets are readable by other local users: {shown}",
            hint=(
                f"chmod -R go-rwx {data_dir} (the database, session keys, the KEK and TOTP "
                "secrets live there; Breakglass creates new files 0600 itself)"
            ),
            id="breakglass.W001",
        )
    ]
