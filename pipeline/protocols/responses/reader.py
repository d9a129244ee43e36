"""Shared decode helpers: per-type Raw decoding with field paths, and the loss recorder.

Every ``RequestError`` names the field path in dotted form (``input.3.call_id``), whatever
msgspec reported (``$.input[3].call_id`` or "Object missing required field").
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

from pipeline.errors import RequestError
from pipeline.model import Loss

T = TypeVar("T")

_INDEX = re.compile(r"\[(\d+)\]")
_DECODERS: dict[type[Any], msgspec.json.Decoder[Any]] = {}


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


def decode_raw(raw: msgspec.Raw, cls: type[T], path: str) -> T:
    """Decode one embedded JSON value as ``cls``; errors name ``path``."""
    decoder = _DECODERS.get(cls)
    if decoder is None:
        decoder = _DECODERS[cls] = msgspec.json.Decoder(cls)
    try:
        return decoder.decode(raw)  # type: ignore[no-any-return]
    except msgspec.ValidationError as exc:
        raise validation_error(exc, path) from None


class Reader:
    """Collects the losses of one request."""

    __slots__ = ("losses",)

    def __init__(self) -> None:
        self.losses: list[Loss] = []

    def lose(self, what: str, detail: str) -> None:
        self.losses.append(Loss(what, detail))


__all__ = ["Reader", "decode_raw", "field_path", "validation_error"]
