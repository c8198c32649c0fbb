"""Every asset is served by the app itself: no CDN, no web fonts, no remote images.

The console must work when the internet's shared services are down (that is when it is
needed), and the strict CSP would block remote assets anyway; this finds them before a
browser does. Links people click (`<a href="https://...">`) are fine.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
PACKAGES = ("breakglass", "drills", "comms")
ASSET_SUFFIXES = {".html", ".htm", ".xml", ".svg", ".css", ".js", ".mjs", ".txt"}

_REMOTE = r"""\s*=\s*["']?\s*(?:https?:)?//"""
_EXTERNAL_ASSET = [
    ("src=", re.compile(r"""\bsrc""" + _REMOTE, re.I)),
    ("srcset=", re.compile(r"""\bsrcset""" + _REMOTE, re.I)),
    (
        "<link href=",
        re.compile(
            r"""<link\b(?![^>]*\brel\s*=\s*["']?(?:alternate|canonical|me|author|license|help)\b)"""
            r"""[^>]*\bhref""" + _REMOTE,
            re.I,
        ),
    ),
    (
        "<use>/<image> href=",
        re.compile(r"""<(?:use|image|feImage|script)\b[^>]*\b(?:xlink:)?href""" + _REMOTE, re.I),
    ),
    ("@import", re.compile(r"""@import\s+(?:url\()?\s*["']?\s*(?:https?:)?//""", re.I)),
    ("url(", re.compile(r"""\burl\(\s*["']?\s*(?:https?:)?//""", re.I)),
]


def external_assets(text: str) -> list[str]:
    found = []
    for name, pattern in _EXTERNAL_ASSET:
        for match in pattern.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append(f"line {line}: {name} {text[match.start() : match.end() + 40]!r}")
    return found


def asset_files() -> list[Path]:
    roots = [ROOT / "templates"]
    for package in PACKAGES:
        roots += [
            p
            for p in (ROOT / package).rglob("*")
            if p.is_dir() and p.name in ("templates", "static")
        ]
    files = set()
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and (path.suffix in ASSET_SUFFIXES or "templates" in path.parts):
                files.add(path)
    return sorted(files)


@pytest.mark.parametrize(
    "snippet",
    [
        '<script src="https://cdn.example/app.js"></script>',
        "<img src=//cdn.example/logo.png>",
        '<link rel="stylesheet" href="https://fonts.googleapis.com/css?family=Inter">',
        '<link href="http://cdn.example/x.css" rel="stylesheet">',
        "@import url('https://fonts.example/inter.css');",
        '@import "//cdn.example/reset.css";',
        "body { background: url(https://cdn.example/bg.png) }",
        '@font-face { src: url("https://fonts.gstatic.com/inter.woff2") }',
        '<svg><use xlink:href="https://cdn.example/sprite.svg#x"/></svg>',
        '<img srcset="https://cdn.example/a.png 2x">',
    ],
)
def test_the_scanner_catches_external_assets(snippet):
    assert external_assets(snippet)


@pytest.mark.parametrize(
    "snippet",
    [
        '<svg xmlns="http://www.w3.org/2000/svg"></svg>',
        '<a href="https://github.com/example/breakglass">source</a>',
        '<link rel="stylesheet" href="{% static \'breakglass/console.css\' %}">',
        '<link rel="alternate" type="application/atom+xml" href="https://status.example/history.atom">',
        '<script src="{{ js_href }}" defer></script>',
        "background: url(data:image/svg+xml;base64,AAAA)",
        "<p>See https://example.com/docs for more</p>",
    ],
)
def test_the_scanner_lets_local_assets_and_plain_links_pass(snippet):
    assert external_assets(snippet) == []


def test_the_scan_covers_the_templates_and_static_files():
    names = {path.relative_to(ROOT).as_posix() for path in asset_files()}
    assert "templates/base.html" in names
    assert "breakglass/access/static/breakglass/console.css" in names


def test_no_template_or_static_file_loads_an_external_asset():
    problems = []
    for path in asset_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # images and fonts: binary, nothing to load from elsewhere
        problems += [f"{path.relative_to(ROOT)} {hit}" for hit in external_assets(text)]
    assert problems == [], "External assets (serve them from the app instead):\n" + "\n".join(
        problems
    )
