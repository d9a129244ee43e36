"""What the Anthropic encoder and decoder share: a web search hit in a result's
``encrypted_content`` and back.

The gateway's ``web_search_tool_result`` entries carry the hit (URL, title, snippet, age) as
base64url JSON in ``encrypted_content`` (opaque to clients, as Anthropic's is), so when the client
sends the result back in its history the model reads the same text again.
"""

from __future__ import annotations

import base64
import binascii

import msgspec

from pipeline.events import SearchHit

_ENC = msgspec.json.Encoder()
_DEC = msgspec.json.Decoder(SearchHit)
PREFIX = "gws1"


def seal_hit(hit: SearchHit) -> str:
    return PREFIX + base64.urlsafe_b64encode(_ENC.encode(hit)).decode()


def open_hit(data: str) -> SearchHit | None:
    """The hit ``seal_hit`` put in ``data``, or ``None`` (not ours: Anthropic's own, say)."""
    if not data.startswith(PREFIX):
        return None
    try:
        return _DEC.decode(base64.urlsafe_b64decode(data[len(PREFIX):]))
    except (binascii.Error, ValueError, msgspec.DecodeError):
        return None


__all__ = ["PREFIX", "open_hit", "seal_hit"]
