"""What the Anthropic encoder and decoder share: a web search hit in a result's
``encrypted_content`` and back.

The gateway's ``web_search_tool_result`` entries carry the hit (URL, title, snippet, age) as
base64url JSON in ``encrypted_content`` (opaque to clients, as Anthropic's is), so when the client
sends the result back in its history the model reads the same text again. A text block that
names a result's URL cites it (``web_search_result_location``, ``encrypted_index`` the same seal).
"""

from __future__ import annotations

import base64
import binascii

import msgspec

from pipeline.events import SearchHit
from pipeline.protocols.anthropic.models import WebSearchCitation

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


CITED_CHARS = 150  # Anthropic's cited_text is at most 150 characters


def cite(text: str, hits: dict[str, SearchHit]) -> list[WebSearchCitation]:
    """The results an answer's text quotes: each hit whose URL the text names, once, in order."""
    return [WebSearchCitation(url=url, title=hit.title or url,
                              cited_text=(hit.snippet or hit.title or url)[:CITED_CHARS], encrypted_index=seal_hit(hit))
            for url, hit in hits.items() if url in text]


def ours(citations: list[object]) -> bool:
    """Whether every citation is one ``cite`` made (it carries nothing the text and results lack)."""
    return all(isinstance(c, dict) and c.get("type") == "web_search_result_location"
               and str(c.get("encrypted_index", "")).startswith(PREFIX) for c in citations)


__all__ = ["CITED_CHARS", "PREFIX", "cite", "open_hit", "ours", "seal_hit"]
