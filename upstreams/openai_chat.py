"""The ``openai_chat`` upstream: DeepSeek, vLLM, llama.cpp, Ollama, OpenAI over Chat Completions.

An ``SseUpstream`` (``upstreams/sse_upstream.py``: the HTTP client, the commit, retries, idle and
queue limits) that speaks Chat: the profile-driven request body (``chat/upstream_encode.py``) and
the chunk decoder (``chat/upstream_decode.py``), the only place block boundaries are inferred. A
session's next request re-encodes only its new messages (``ctx.recall``, ``chat/upstream_encode_messages.py``).
"""

from __future__ import annotations

from typing import ClassVar

import msgspec

from pipeline.attempt import Attempt
from pipeline.events import ErrorInfo
from pipeline.model import ChatRequest
from pipeline.protocols.chat import ChatStreamDecoder, encode_request, parse_error_body
from pipeline.stage import RequestContext
from upstreams.sse_upstream import SseUpstream


class OpenAIChatUpstream(SseUpstream):
    type_name: ClassVar[str] = "openai_chat"

    def path(self) -> str:
        return self.config.chat_path

    def encode(self, request: ChatRequest, attempt: Attempt, ctx: RequestContext) -> bytes:
        # Chat servers strip a matched stop string, so the decoder matches the client's itself.
        request = msgspec.structs.replace(request, stop=()) if request.stop else request
        # The messages' translation is remembered per upstream and model (a fallback keeps its own).
        return encode_request(request, model=attempt.model, profile=self.profile, card=attempt.card, stream=True,
                              lose=ctx.lose, recall=ctx.recall, slot=f"chat_encode\0{self.id}\0{attempt.model}")

    def decoder(self, request: ChatRequest, ctx: RequestContext) -> ChatStreamDecoder:
        return ChatStreamDecoder(self.profile, stop=request.stop)

    def error_info(self, status: int, body: bytes, retry_after: str | None) -> ErrorInfo:
        return parse_error_body(status, body, retry_after=retry_after)


__all__ = ["OpenAIChatUpstream"]
