"""Decoding a client's JSON body into wire Structs, with errors that name the field path.

Shared by every client codec: msgspec's ``Expected `str`, got `int` - at `$.messages[3].content```
becomes ``RequestError("messages.3.content: expected `str`, got `int`")``. A codec that decodes a
sub-value later (an embedded ``msgspec.Raw``, a ``dict`` block) goes through ``field_error`` too,
via ``values.decode_value``: msgspec checks a Raw's UTF-8 only when it is decoded, so a
``DecodeError`` can surface there, and it names the Raw's path.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

from pipeline.errors import RequestError

T = TypeVar("T")
_INDEX = re.compile(r"\[(\d+)\]")


def field_path(loc: str) -> str:
    """``$.input[3].call_id`` → ``input.3.call_id``."""
    return _INDEX.sub(r".\1", loc.removeprefix("$")).strip(".")


def field_error(exc: msgspec.DecodeError, prefix: str = "", data: bytes | msgspec.Raw = b"") -> RequestError:
    """A ``RequestError`` naming the field path of a msgspec failure under ``prefix``: a
    validation error (its own path appended) or a decode error of ``data``, an embedded value at
    ``prefix`` (invalid UTF-8: which byte of it)."""
    message, _, loc = str(exc).partition(" - at `")
    if type(exc) is msgspec.DecodeError:
        message += _bad_utf8_at(exc, data, "of this value")
    path = ".".join(p for p in (prefix, field_path(loc.rstrip("`"))) if p)
    missing = message.removeprefix("Object missing required field `")
    if missing != message:
        path = ".".join(p for p in (path, missing.rstrip("`")) if p)
        message = "field required"
    elif message:
        message = message[0].lower() + message[1:]
    if not path:
        return RequestError(f"invalid request body: {message}")
    return RequestError(f"{path}: {message}")


def decode_body(decoder: msgspec.json.Decoder[Any], body: bytes) -> Any:
    """``decoder.decode(body)``; raises ``RequestError`` for bad JSON, a non-object, a bad field."""
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        if str(exc).startswith("Expected `object`") and " - at " not in str(exc):
            raise RequestError("request body must be a JSON object") from None
        raise field_error(exc) from None
    except msgspec.DecodeError as exc:
        raise RequestError(f"request body is not valid JSON: {exc}{_bad_utf8_at(exc, body, 'of the body')}") from None


def _bad_utf8_at(exc: msgspec.DecodeError, data: bytes | msgspec.Raw, of: str) -> str:
    """`` at byte N <of>``, the first invalid UTF-8 byte of ``data``, when that is what ``exc``
    is about (msgspec does not say where); else ``""``."""
    if "UTF-8" not in str(exc):
        return ""
    try:
        bytes(data).decode()
    except UnicodeDecodeError as err:
        return f" at byte {err.start} {of}"
    return ""


__all__ = ["decode_body", "field_error", "field_path"]
