"""Which form controls of a page have no accessible label: a screen reader would announce
them as just "combo box" or "edit text". A control is labelled by `aria-label`,
`aria-labelledby`, a `<label for=its id>`, or a `<label>` around it (the ways the
accessible-name computation accepts that a server-rendered page uses)."""

from __future__ import annotations

from collections import Counter
from html.parser import HTMLParser

UNLABELLED_INPUT_TYPES = {"hidden", "submit", "button", "reset", "image"}


class _Controls(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.label_depth = 0
        self.label_for: set[str] = set()
        self.controls: list[tuple[str, dict, bool]] = []  # (tag, attrs, inside a label)
        self.ids: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = {name: value or "" for name, value in attrs}
        if "id" in attrs:
            self.ids.append(attrs["id"])
        if tag == "label":
            self.label_depth += 1
            if attrs.get("for"):
                self.label_for.add(attrs["for"])
        elif tag in ("select", "textarea") or (
            tag == "input" and attrs.get("type", "text") not in UNLABELLED_INPUT_TYPES
        ):
            self.controls.append((tag, attrs, self.label_depth > 0))

    def handle_endtag(self, tag):
        if tag == "label" and self.label_depth:
            self.label_depth -= 1


def unlabelled_controls(html: str) -> list[str]:
    """A description of each control without an accessible label (empty: all labelled)."""
    parser = _Controls()
    parser.feed(html)
    missing = []
    for tag, attrs, inside_label in parser.controls:
        labelled = (
            inside_label
            or attrs.get("aria-label", "").strip()
            or attrs.get("aria-labelledby", "").strip()
            or (attrs.get("id") and attrs["id"] in parser.label_for)
        )
        if not labelled:
            missing.append(f"<{tag} name={attrs.get('name')!r} id={attrs.get('id')!r}>")
    return missing


def duplicate_ids(html: str) -> list[str]:
    """Ids used more than once (a `<label for>` then points at the first one only)."""
    parser = _Controls()
    parser.feed(html)
    return sorted(name for name, count in Counter(parser.ids).items() if count > 1)
