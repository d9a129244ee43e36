"""``ChatCodec``: the gateway seen by a plain OpenAI Chat Completions client.

Serves ``POST /v1/chat/completions`` and ``GET /v1/models``; renders errors as OpenAI error
objects with the right status (and ``retry-after`` for rate limits and overload).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

from pipeline.errors import GatewayError
from pipeline.model import ChatRequest
from pipeline.protocols.base import ClientCodec, Endpoint, ErrorBody, ModelInfo
from pipeline.protocols.chat.client_decode import decode_chat_request
from pipeline.protocols.chat.client_encode import ChatChunkEncoder, ChatCompletionCollector
from pipeline.protocols.chat.errors import openai_error
from pipeline.protocols.chat.models import ENCODER

_JSON = (b"content-type", b"application/json")
# A 429 always carries retry-after; when the upstream gave none, suggest this many seconds.
DEFAULT_RETRY_AFTER_S = 1.0


class ChatCodec(ClientCodec):
    name: ClassVar[str] = "chat"
    endpoints: ClassVar[Sequence[Endpoint]] = (
        Endpoint("POST", "/v1/chat/completions", "generate"),
        Endpoint("GET", "/v1/models", "models"),
    )

    def decode_request(self, body: bytes) -> ChatRequest:
        return decode_chat_request(body)

    def stream_encoder(self, request: ChatRequest) -> ChatChunkEncoder:
        return ChatChunkEncoder(request)

    def collector(self, request: ChatRequest) -> ChatCompletionCollector:
        return ChatCompletionCollector(request)

    def render_error(self, err: GatewayError) -> ErrorBody:
        info = err.info()
        headers = [_JSON]
        retry = info.retry_after_s
        if retry is None and info.code == "rate_limit":
            retry = DEFAULT_RETRY_AFTER_S
        if retry is not None and info.code in ("rate_limit", "overloaded"):
            headers.append((b"retry-after", str(max(0, math.ceil(retry))).encode()))
        return ErrorBody(status=info.status, headers=headers, body=ENCODER.encode(openai_error(info)))

    def render_models(self, models: Sequence[ModelInfo]) -> bytes:
        return ENCODER.encode(
            {
                "object": "list",
                "data": [
                    {
                        "id": m.id,
                        "object": "model",
                        "created": 0,
                        "owned_by": m.owned_by,
                        "context_window": m.context_window,
                        "max_output_tokens": m.max_output_tokens,
                    }
                    for m in models
                ],
            }
        )


__all__ = ["ChatCodec"]
