"""Unpadded base64url (RFC 7515 section 2): the one implementation, strict on decode.

Only `binascii` (no `base64`, `re`): the verifier imports this on every SSH login.
"""

from __future__ import annotations

import binascii

# base64url -> standard alphabet; "+", "/" and "=" become "!" so strict mode rejects them.
_TO_STD = bytes.maketrans(b"-_+/=", b"+/!!!")
_STD_TO_URL = bytes.maketrans(b"+/", b"-_")
_PADDING = (b"", None, b"==", b"=")


class Base64Error(ValueError):
    """The text is not unpadded base64url; the message says what is wrong."""


def b64url_encode(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).translate(_STD_TO_URL).rstrip(b"=").decode()


def b64url_decode(text: str | bytes) -> bytes:
    """Decode unpadded base64url strictly (no padding, whitespace or foreign characters).

    Trailing bits are not checked here (the token check does it for signatures, the key
    decoder compares the re-encoding); use `b64url_decode_canonical` to refuse them.
    """
    if type(text) is bytes:
        data = text
    else:
        try:
            data = text.encode("ascii")
        except (UnicodeEncodeError, AttributeError):
            raise Base64Error("not base64url text") from None
    padding = _PADDING[len(data) & 3]
    if padding is None:
        raise Base64Error("impossible base64url length")
    try:
        return binascii.a2b_base64(data.translate(_TO_STD) + padding, strict_mode=True)
    except (binascii.Error, ValueError):
        raise Base64Error("not unpadded base64url") from None


def b64url_decode_canonical(text: str) -> bytes:
    """`b64url_decode`, also refusing non-canonical spellings (trailing bits set), so one
    value has one spelling."""
    raw = b64url_decode(text)
    if b64url_encode(raw) != text:
        raise Base64Error("non-canonical base64url")
    return raw
