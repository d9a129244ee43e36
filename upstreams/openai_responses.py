"""The ``openai_responses`` upstream: OpenAI, DeepSeek's Responses API, vLLM and llama.cpp over Responses.

An ``SseUpstream`` (``upstreams/sse_upstream.py``: the HTTP client, the commit, retries, idle and
queue limits) that speaks Responses: ``POST {base_url}/responses`` with a Bearer key, the
profile-driven request body (``responses/upstream_encode.py``: stateless, ``store: false``, the
reasoning items' ``encrypted_content`` back only to this upstream) and the event decoder
(``responses/upstream_decode.py``). Error bodies are OpenAI's shape (``protocols/openai.py``).
"""

from __future__ import annotations

from typing import ClassVar

from pipeline.attempt import Attempt
from pipeline.events import ErrorInfo
from pipeline.model import ChatRequest
from pipeline.protocols.openai import parse_error_body
from pipeline.protocols.responses.upstream_decode import ResponsesStreamDecoder
from pipeline.protocols.responses.upstream_encode import encode_request
from pipeline.stage import RequestContext
from upstreams.sse_upstream import SseUpstream


class OpenAIResponsesUpstream(SseUpstream):
    type_name: ClassVar[str] = "openai_responses"

    def path(self) -> str:
        return "/responses"

    def encode(self, request: ChatRequest, attempt: Attempt, ctx: RequestContext) -> bytes:
        return encode_request(request, model=attempt.model, profile=self.profile, card=attempt.card,
                              upstream_id=attempt.upstream_id, lose=ctx.lose)

    def decoder(self, request: ChatRequest, ctx: RequestContext) -> ResponsesStreamDecoder:
        return ResponsesStreamDecoder()

    def error_info(self, status: int, body: bytes, retry_after: str | None) -> ErrorInfo:
        return parse_error_body(status, body, retry_after=retry_after)


__all__ = ["OpenAIResponsesUpstream"]
