"""Strict, bounded decoding shared by the token and bundle checks (base64url: `b64.py`).

JSON here is the canonical subset (breakglass/core/canonical.py): no floats, no NaN,
no duplicate object keys (two parsers could otherwise disagree about which `aud` or
`exp` wins), and a size limit applied before any parsing. Deep nesting surfaces as
`RecursionError` from the C scanner and is reported like any other malformed input.
"""

from __future__ import annotations

import json

from breakglass.core.b64 import Base64Error

# The largest integer every JSON implementation (JavaScript included) reads exactly.
MAX_SAFE_INTEGER = 2**53 - 1


class ParseError(ValueError):
    """Input is not strict JSON; the message says what is wrong."""


# What decoding untrusted base64url JSON can raise: catch this tuple.
DECODE_ERRORS = (ParseError, Base64Error)


def _object(pairs: list) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ParseError("duplicate key in JSON object")
    return result


def _no_float(text: str):
    raise ParseError("non-integer number in JSON")


def _no_constant(text: str):
    raise ParseError(f"{text} is not JSON")


_DECODER = json.JSONDecoder(
    object_pairs_hook=_object, parse_float=_no_float, parse_constant=_no_constant
)
# The C scanner calls this directly; it avoids json.loads' per-call type checks.
_decode = _DECODER.decode


def json_decode(data: bytes | str, *, limit: int) -> object:
    """Parse strict JSON from UTF-8 bytes (or text) of at most `limit` bytes."""
    if len(data) > limit:
        raise ParseError(f"larger than {limit} bytes")
    try:
        text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
        if not isinstance(text, str):
            raise ParseError("not text")
        return _decode(text)
    except ParseError:
        raise
    except RecursionError:
        raise ParseError("JSON nested too deeply") from None
    except UnicodeDecodeError:
        raise ParseError("not UTF-8") from None
    except ValueError as exc:  # JSONDecodeError, or an integer with too many digits
        raise ParseError(f"not valid JSON ({_short(exc)})") from None


_scan = _DECODER.scan_once


def json_decode_compact(data: bytes, *, limit: int) -> object:
    """`json_decode`, faster for the usual input with no surrounding whitespace.

    Calls the C scanner directly (skipping `decode()`'s whitespace regexes); anything
    unusual, including every error, goes through `json_decode` for the exact answer.
    """
    if len(data) <= limit:
        try:
            text = data.decode("utf-8")
            value, end = _scan(text, 0)
            if end == len(text):
                return value
        except ParseError:
            raise
        except Exception:  # noqa: S110 - json_decode below gives the precise error
            pass
    return json_decode(data, limit=limit)


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) <= 120 else text[:117] + "..."


def is_int(value: object) -> bool:
    """A JSON integer in the safe range; `True` is an int in Python, so check the exact type."""
    return type(value) is int and -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER


def is_time(value: object) -> bool:
    return type(value) is int and 0 <= value <= MAX_SAFE_INTEGER


def is_text(value: object, *, max_length: int = 1024) -> bool:
    return type(value) is str and 0 < len(value) <= max_length
