"""The OpenAI Responses client codec (``POST /v1/responses``, as Codex CLI uses it).

Reference: https://platform.openai.com/docs/api-reference/responses, openai-python
``types/responses`` (v3.5x), ../shared/PROTOCOLS.md §2 and §5.3-5.9. Sans-IO throughout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from pipeline.errors import GatewayError
from pipeline.model import ChatRequest
from pipeline.protocols.base import ClientCodec, Endpoint, ErrorBody, ModelInfo
from pipeline.protocols.responses.collect import ResponsesCollector
from pipeline.protocols.responses.decode import decode_request
from pipeline.protocols.responses.errors import render_count, render_error, render_models
from pipeline.protocols.responses.stream import ResponsesStreamEncoder


class ResponsesCodec(ClientCodec):
    name: ClassVar[str] = "responses"
    endpoints: ClassVar[Sequence[Endpoint]] = (
        Endpoint("POST", "/v1/responses", "generate"),
        Endpoint("GET", "/v1/models", "models"),
    )

    def decode_request(self, body: bytes) -> ChatRequest:
        return decode_request(body)

    def stream_encoder(self, request: ChatRequest) -> ResponsesStreamEncoder:
        return ResponsesStreamEncoder(request)

    def collector(self, request: ChatRequest) -> ResponsesCollector:
        return ResponsesCollector(request)

    def render_error(self, err: GatewayError) -> ErrorBody:
        return render_error(err)

    def render_models(self, models: Sequence[ModelInfo]) -> bytes:
        return render_models(models)

    def render_count(self, input_tokens: int) -> bytes:
        return render_count(input_tokens)


__all__ = ["ResponsesCodec", "ResponsesCollector", "ResponsesStreamEncoder", "decode_request"]
