"""The ``AnthropicCodec``: the endpoints this dialect serves and the pieces that serve them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from pipeline.protocols.anthropic.client_decode import decode_request
from pipeline.protocols.anthropic.client_decode_echo import AnthropicEcho
from pipeline.protocols.anthropic.client_encode import (
    AnthropicCollector,
    AnthropicStreamEncoder,
    render_count,
    render_error,
    render_models,
)
from pipeline.protocols.base import ClientCodec, Endpoint


class AnthropicCodec(ClientCodec[AnthropicEcho]):
    """Anthropic Messages: decode requests, encode SSE / bodies / errors / model lists."""

    name: ClassVar[str] = "anthropic"
    endpoints: ClassVar[Sequence[Endpoint]] = (
        Endpoint("POST", "/v1/messages", "generate"),
        Endpoint("POST", "/v1/messages/count_tokens", "count_tokens"),
        Endpoint("GET", "/v1/models", "models"),
        Endpoint("HEAD", "/api/hello", "hello"),
        Endpoint("GET", "/api/hello", "hello"),
    )

    echo_type = AnthropicEcho
    decoder = staticmethod(decode_request)
    stream_encoder_type = staticmethod(AnthropicStreamEncoder)
    collector_type = staticmethod(AnthropicCollector)
    error_renderer = staticmethod(render_error)
    models_renderer = staticmethod(render_models)
    count_renderer = staticmethod(render_count)


__all__ = ["AnthropicCodec"]
