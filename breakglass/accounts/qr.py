"""QR codes rendered on the server as inline SVG, so enrolment needs no JavaScript, no
image endpoint that would serve a secret, and nothing the strict CSP has to allow
(segno's inline SVG has no `style` attributes; sizing comes from console.css)."""

from __future__ import annotations

import segno
from django.utils.safestring import SafeString, mark_safe


def qr_svg(data: str, *, title: str = "QR code") -> SafeString:
    qr = segno.make(data, error="m")
    # segno escapes the title; the rest is path data it generates itself.
    svg = qr.svg_inline(
        scale=4, omitsize=True, title=title, svgclass="qrcode", dark="#000", light="#fff"
    )
    return mark_safe(svg)  # noqa: S308 - generated markup, no user-controlled HTML
