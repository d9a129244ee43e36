"""The ``anthropic_messages`` upstream: the Anthropic Messages API, and servers that speak it
(DeepSeek's ``https://api.deepseek.com/anthropic``; vLLM, llama.cpp and Ollama serve
``/v1/messages`` too).

An ``SseUpstream`` (``upstreams/sse_upstream.py``: the HTTP client, the commit, retries, idle and
queue limits) that speaks Messages: ``POST {base_url}/v1/messages`` with ``x-api-key`` (or
``Authorization: Bearer`` with ``options: {auth: bearer}``) and ``anthropic-version: 2023-06-01``;
the profile-driven body (``anthropic/upstream_encode.py``) and the event decoder
(``anthropic/upstream_decode.py``).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import httpx
import msgspec

from pipeline.attempt import Attempt
from pipeline.events import ErrorInfo
from pipeline.model import ChatRequest
from pipeline.protocols.anthropic.upstream_decode import MessagesStreamDecoder, parse_error_body
from pipeline.protocols.anthropic.upstream_encode import encode_request
from pipeline.stage import RequestContext
from pipeline.upstream import UpstreamConfig
from upstreams.sse_upstream import SseUpstream

API_VERSION = "2023-06-01"


class MessagesOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # How the key is sent: Anthropic's x-api-key, or Authorization: Bearer (some proxies).
    auth: Literal["x-api-key", "bearer"] = "x-api-key"
    # The path appended to base_url.
    path: str = "/v1/messages"
    # The anthropic-version header.
    version: str = API_VERSION


class AnthropicMessagesUpstream(SseUpstream):
    type_name: ClassVar[str] = "anthropic_messages"

    def __init__(self, config: UpstreamConfig, *, upstream_id: str,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        try:
            self.options = msgspec.convert(config.options, MessagesOptions)
        except msgspec.ValidationError as exc:
            raise ValueError(f"options: {exc}") from None
        super().__init__(config, upstream_id=upstream_id, transport=transport)

    def path(self) -> str:
        return self.options.path

    def request_headers(self, key: str | None) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": "text/event-stream",
                   "anthropic-version": self.options.version, **self.config.headers}
        if key:
            if self.options.auth == "bearer":
                headers["authorization"] = f"Bearer {key}"
            else:
                headers["x-api-key"] = key
        return headers

    def encode(self, request: ChatRequest, attempt: Attempt, ctx: RequestContext) -> bytes:
        return encode_request(request, model=attempt.model, profile=self.profile, card=attempt.card,
                              upstream_id=self.id, stream=True, lose=ctx.lose)

    def decoder(self, request: ChatRequest, ctx: RequestContext) -> MessagesStreamDecoder:
        # An upstream's redacted_thinking goes only where it can come back from: an Anthropic
        # client, to an upstream that takes its own blocks back (thinking_filter binds it to this one).
        return MessagesStreamDecoder(lose=ctx.loss_recorder(),
                                     redacted=self.profile.keep_client_thinking and ctx.client == "anthropic")

    def error_info(self, status: int, body: bytes, retry_after: str | None) -> ErrorInfo:
        return parse_error_body(status, body, retry_after=retry_after)


__all__ = ["API_VERSION", "AnthropicMessagesUpstream", "MessagesOptions"]
