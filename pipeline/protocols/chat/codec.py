"""``ChatCodec``: the gateway seen by a plain OpenAI Chat Completions client.

Serves ``POST /v1/chat/completions`` and ``GET /v1/models``; renders errors as OpenAI error
objects with the right status (and ``retry-after`` for rate limits and overload).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from pipeline.errors import GatewayError
from pipeline.protocols.base import ClientCodec, Endpoint, ErrorBody, retry_after_headers
from pipeline.protocols.chat.client_decode import decode_chat_request
from pipeline.protocols.chat.client_decode_echo import ChatEcho
from pipeline.protocols.chat.client_encode import ChatChunkEncoder, ChatCompletionCollector
from pipeline.protocols.chat.errors import openai_error
from pipeline.protocols.chat.models import ENCODER
from pipeline.protocols.openai import render_models

_JSON = (b"content-type", b"application/json")
# A 429 always carries retry-after; when the upstream gave none, suggest this many seconds.
DEFAULT_RETRY_AFTER_S = 1.0


def render_error(err: GatewayError) -> ErrorBody:
    """OpenAI's error object with the right status; 429 always carries retry-after."""
    info = err.info()
    headers = [_JSON]
    retry = info.retry_after_s
    if retry is None and info.code == "rate_limit":
        retry = DEFAULT_RETRY_AFTER_S
    if info.code in ("rate_limit", "overloaded"):
        headers += retry_after_headers(retry)
    return ErrorBody(status=info.status, headers=headers, body=ENCODER.encode(openai_error(info)))


def render_count(input_tokens: int) -> bytes:
    raise NotImplementedError("the Chat protocol has no token-count endpoint")


class ChatCodec(ClientCodec[ChatEcho]):
    name: ClassVar[str] = "chat"
    endpoints: ClassVar[Sequence[Endpoint]] = (
        Endpoint("POST", "/v1/chat/completions", "generate"),
        Endpoint("GET", "/v1/models", "models"),
    )
    echo_type = ChatEcho
    decoder = staticmethod(decode_chat_request)
    stream_encoder_type = staticmethod(ChatChunkEncoder)
    collector_type = staticmethod(ChatCompletionCollector)
    error_renderer = staticmethod(render_error)
    # The OpenAI model-list shape, shared with the Responses codec.
    models_renderer = staticmethod(render_models)
    count_renderer = staticmethod(render_count)


__all__ = ["ChatCodec", "render_error"]
