"""A self-contained static copy of the status page, for hosting somewhere that does not
share this platform's fate (the upptime lesson: a status page must not load its data from
the thing that is down). Everything is embedded: no runtime fetch, no external asset.

Files are written atomically (`breakglass.core.files.file_write_atomic`), so a
reader never sees half a file, and a failed export leaves the previous copy intact.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.contrib.staticfiles import finders
from django.template.loader import render_to_string

from breakglass.core.files import file_write_atomic
from breakglass.project.files import public_dir_make
from comms import statuspage

# The favicon is the console's: one mark for Breakglass wherever it shows.
ASSETS = {
    "status.css": "comms/status.css",
    "stale.js": "comms/stale.js",
    "favicon.svg": "breakglass/favicon.svg",
}


def _write(path: Path, data: bytes) -> None:
    public_dir_make(path.parent)
    file_write_atomic(path, data, mode=0o644)  # a public page


def status_site_export(*, out_dir: Path | str) -> list[Path]:
    """Write index.html, api/v2/*.json, history.atom and the assets. Returns the paths."""
    out = Path(out_dir)
    written: list[Path] = []
    context = statuspage.page_context()
    files: dict[str, bytes] = {}
    for name, document in statuspage.all_documents().items():
        files[f"api/v2/{name}"] = json.dumps(document, indent=2).encode()
    files["history.atom"] = statuspage.atom_feed().encode()
    files["index.html"] = render_to_string(
        "status/page.html",
        {
            **context,
            "static_copy": True,
            "css_href": "status.css",
            "js_href": "stale.js",
            "favicon_href": "favicon.svg",
            "api_prefix": "api/v2/",
            "feed_href": "history.atom",
        },
    ).encode()
    for target, source in ASSETS.items():
        found = finders.find(source)
        if not found:
            raise FileNotFoundError(f"static asset {source} is missing")
        files[target] = Path(found).read_bytes()
    for name, data in files.items():
        path = out / name
        _write(path, data)
        written.append(path)
    return written
