"""Decoding a client's JSON body into wire Structs, with errors that name the field path.

Shared by every client codec: msgspec's ``Expected `str`, got `int` - at `$.messages[3].content```
becomes ``RequestError("messages.3.content: expected `str`, got `int`")``.
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


def validation_error(exc: msgspec.ValidationError, prefix: str = "") -> RequestError:
    """A ``RequestError`` naming the field path of a msgspec validation failure."""
    message, _, loc = str(exc).partition(" - at `")
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
        raise validation_error(exc) from None
    except msgspec.DecodeError as exc:
        raise RequestError(f"request body is not valid JSON: {exc}") from None


__all__ = ["decode_body", "field_path", "validation_error"]
