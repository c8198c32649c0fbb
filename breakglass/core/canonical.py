"""Canonical JSON: the one byte encoding that signatures and hashes are computed over.

Rules (a strict subset of RFC 8785 that any language can reproduce):
- objects with string keys sorted by code point, no insignificant whitespace;
- strings as UTF-8, escaping only what JSON requires (`ensure_ascii=False`);
- integers only, within +/- 2**53 - 1 so JavaScript and others agree; no floats;
- true, false, null, arrays as usual.
Anything else is refused with `CanonicalError` rather than encoded ambiguously.
"""

from __future__ import annotations

import json

from breakglass.core._parse import MAX_SAFE_INTEGER


class CanonicalError(ValueError):
    """The value cannot be encoded canonically (float, non-string key, huge integer...)."""


def _check(value: object, depth: int = 0) -> None:
    if depth > 64:
        raise CanonicalError("nested deeper than 64 levels")
    if value is None or isinstance(value, (bool, str)):
        return
    if isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise CanonicalError(f"integer {value} is outside the safe range")
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _check(item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalError(f"object key {key!r} is not a string")
            _check(item, depth + 1)
        return
    raise CanonicalError(f"{type(value).__name__} values are not allowed in canonical JSON")


# One encoder for every call (json.dumps with these options builds a new one each time).
_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def canonical_json(value: object) -> bytes:
    """Encode `value` canonically as UTF-8 bytes."""
    _check(value)
    return _ENCODER.encode(value).encode("utf-8")


def canonical_json_unchecked(value: object) -> bytes:
    """What `canonical_json` returns for a value it accepts, without checking that it
    would: for re-hashing values that were checked when first encoded (a verifier that
    compares the result with a stored hash, and falls back to `canonical_json` when they
    differ, so a value that was never canonical still gets the same verdict)."""
    return _ENCODER.encode(value).encode("utf-8")
