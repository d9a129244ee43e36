"""The Anthropic Messages client codec (API version 2023-06-01), as Claude Code uses it.

Reference: https://docs.anthropic.com/en/api/messages and ../shared/PROTOCOLS.md §1. Claude Code
calls ``POST /v1/messages?beta=true`` (query ignored by routing) and, without its network
opt-outs, ``HEAD /api/hello`` first (captures/claude-no-optouts-text-other-HEAD-api_hello.json).

Modules, named by the side they serve: ``codec`` (the ``ClientCodec``), ``models`` (wire
Structs), ``client_decode*`` (the client's request → neutral ``ChatRequest``), ``client_encode*``
(neutral events → the client's SSE, body and errors).
"""

from __future__ import annotations

from pipeline.protocols.anthropic.client_decode import decode_request
from pipeline.protocols.anthropic.client_encode import AnthropicCollector, AnthropicStreamEncoder
from pipeline.protocols.anthropic.codec import AnthropicCodec

__all__ = ["AnthropicCodec", "AnthropicCollector", "AnthropicStreamEncoder", "decode_request"]
