"""Shared decode helpers: per-type Raw decoding with field paths, and the loss recorder.

Every ``RequestError`` names the field path in dotted form (``input.3.call_id``), whatever
msgspec reported (``$.input[3].call_id``, "Object missing required field", or invalid UTF-8 that
only decoding the embedded value finds).
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from pipeline.protocols.body import field_error
from pipeline.model import Loss

T = TypeVar("T")

_DECODERS: dict[type[Any], msgspec.json.Decoder[Any]] = {}


def decode_raw(raw: msgspec.Raw, cls: type[T], path: str) -> T:
    """Decode one embedded JSON value as ``cls``; errors name ``path``."""
    decoder = _DECODERS.get(cls)
    if decoder is None:
        decoder = _DECODERS[cls] = msgspec.json.Decoder(cls)
    try:
        return decoder.decode(raw)  # type: ignore[no-any-return]
    except msgspec.DecodeError as exc:  # a ValidationError, or invalid UTF-8 inside the Raw
        raise field_error(exc, path, raw) from None


class Reader:
    """Collects the losses of one request."""

    __slots__ = ("losses",)

    def __init__(self) -> None:
        self.losses: list[Loss] = []

    def lose(self, what: str, detail: str) -> None:
        self.losses.append(Loss(what, detail))


__all__ = ["Reader", "decode_raw"]
