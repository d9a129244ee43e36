"""What the Responses upstream's encoder and decoder share: the form of a reasoning item's seal.

A Responses upstream's reasoning item is replayed on a later turn by its ``id`` and
``encrypted_content`` (OpenAI's, DeepSeek's: opaque, and only the upstream that made it opens it).
The decoder puts both into one ``UpstreamSeal.data`` string (JSON), the encoder reads them back
from ``Message.upstream_seal`` when the request goes to that same upstream.
"""

from __future__ import annotations

import msgspec


class ReasoningSeal(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    id: str | None = None
    encrypted_content: str | None = None


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(ReasoningSeal)


def seal_data(item_id: str | None, encrypted_content: str | None) -> str:
    """``UpstreamSeal.data`` for a reasoning item."""
    return _ENCODER.encode(ReasoningSeal(id=item_id, encrypted_content=encrypted_content)).decode()


def open_seal(data: str) -> ReasoningSeal | None:
    """The reasoning item's id and encrypted_content from ``UpstreamSeal.data``, or ``None``."""
    try:
        return _DECODER.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


__all__ = ["ReasoningSeal", "open_seal", "seal_data"]
