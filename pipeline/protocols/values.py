"""One decoder for the sub-values of a client body, shared by every client codec.

A codec that decodes its body in two steps (the top level first, then each item, block or tool
after peeking at its ``type``) decodes the second step here: an embedded JSON value
(``msgspec.Raw``, the Responses codec) or an already-decoded builtin value (a ``dict`` block, the
Anthropic codec). Every msgspec failure becomes a ``RequestError`` naming the field path
(``messages.3.content: expected `str`, got `array```): a ``ValidationError`` and also a plain
``DecodeError``, which msgspec raises for invalid UTF-8 only when a Raw is decoded. Typed
decoders are built once per type and cached at module level (this is on every request's path).
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from pipeline.errors import RequestError
from pipeline.protocols.request_body import field_error

T = TypeVar("T")

_DECODERS: dict[Any, msgspec.json.Decoder[Any]] = {}


def decode_value(raw: object, cls: type[T], path: str, *, expected: str | None = None) -> T:
    """``raw`` as ``cls``: a ``msgspec.Raw`` is decoded, any other value converted.

    Args:
        raw: the embedded value (``msgspec.Raw``) or a builtin value (``dict``, ``list``...).
        cls: the type to decode to (a Struct, or any type msgspec accepts, unions included).
        path: the value's field path in dotted form (``input.3``), prefixed to every error.
        expected: when given, a type mismatch reads ``{path}: {expected}`` instead of msgspec's
            message (invalid UTF-8 still says so).

    Raises:
        RequestError: any ``msgspec.DecodeError`` (``ValidationError`` included), naming the path.
    """
    try:
        if isinstance(raw, msgspec.Raw):
            decoder = _DECODERS.get(cls)
            if decoder is None:
                decoder = _DECODERS[cls] = msgspec.json.Decoder(cls)
            return decoder.decode(raw)
        return msgspec.convert(raw, type=cls)
    except msgspec.ValidationError as exc:
        if expected is not None:
            raise RequestError(f"{path}: {expected}") from None
        raise field_error(exc, path) from None
    except msgspec.DecodeError as exc:  # invalid UTF-8 inside a Raw
        raise field_error(exc, path, raw if isinstance(raw, msgspec.Raw) else b"") from None


__all__ = ["decode_value"]
