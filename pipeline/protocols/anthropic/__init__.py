"""The Anthropic Messages client codec (API version 2023-06-01), as Claude Code uses it.

Reference: https://docs.anthropic.com/en/api/messages and ../shared/PROTOCOLS.md §1. Claude Code
calls ``POST /v1/messages?beta=true`` (query ignored by routing) and, without its network
opt-outs, ``HEAD /api/hello`` first (captures/claude-no-optouts-text-other-HEAD-api_hello.json).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from pipeline.protocols.anthropic.decode import decode_request
from pipeline.protocols.anthropic.encode import (
    AnthropicCollector,
    AnthropicStreamEncoder,
    render_count,
    render_error,
    render_models,
)
from pipeline.protocols.base import ClientCodec, Endpoint


class AnthropicCodec(ClientCodec):
    """Anthropic Messages: decode requests, encode SSE / bodies / errors / model lists."""

    name: ClassVar[str] = "anthropic"
    endpoints: ClassVar[Sequence[Endpoint]] = (
        Endpoint("POST", "/v1/messages", "generate"),
        Endpoint("POST", "/v1/messages/count_tokens", "count_tokens"),
        Endpoint("GET", "/v1/models", "models"),
        Endpoint("HEAD", "/api/hello", "hello"),
        Endpoint("GET", "/api/hello", "hello"),
    )

    decoder = staticmethod(decode_request)
    stream_encoder_type = staticmethod(AnthropicStreamEncoder)
    collector_type = staticmethod(AnthropicCollector)
    error_renderer = staticmethod(render_error)
    models_renderer = staticmethod(render_models)
    count_renderer = staticmethod(render_count)


__all__ = ["AnthropicCodec", "AnthropicCollector", "AnthropicStreamEncoder", "decode_request"]
