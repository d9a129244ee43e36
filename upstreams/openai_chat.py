"""The ``openai_chat`` upstream: DeepSeek, vLLM, llama.cpp, Ollama, OpenAI over Chat Completions.

Encode the neutral request with the profile, POST it with ``stream: true`` (non-streaming
clients are served from the same stream), then bytes → ``SseDecoder`` → ``ChatStreamDecoder`` →
events. Upstream HTTP errors before the first byte raise ``UpstreamError`` (``retryable`` for
connect errors, 429, 5xx); failures after it end the stream with ``StreamError``.
"""

from __future__ import annotations

from typing import ClassVar

import httpx
import msgspec
import trio

from pipeline.errors import UpstreamError, redact
from pipeline.events import ErrorInfo, Event, Heartbeat, StreamError
from pipeline.model import ChatRequest
from pipeline.protocols.chat import ChatStreamDecoder, encode_request, parse_error_body
from pipeline.sse import SseDecoder
from pipeline.tokens import prompt_text
from pipeline.stage import RequestContext
from upstreams.base import Upstream, UpstreamConfig

_TOKENIZE = msgspec.json.Encoder()
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class OpenAIChatUpstream(Upstream):
    type_name: ClassVar[str] = "openai_chat"

    def __init__(self, config: UpstreamConfig, *, upstream_id: str,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(config, upstream_id=upstream_id)
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self.url = config.base_url.rstrip("/") + config.chat_path

    def _timeout(self) -> httpx.Timeout:
        c = self.config
        return httpx.Timeout(connect=c.connect_timeout_s, read=c.idle_timeout_s, write=c.idle_timeout_s, pool=c.connect_timeout_s)

    async def open(self) -> None:
        if self._client is None:
            limits = httpx.Limits(max_connections=self.config.max_connections,
                                  max_keepalive_connections=min(64, self.config.max_connections))
            self._client = httpx.AsyncClient(transport=self._transport, timeout=self._timeout(), limits=limits)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _headers(self, ctx: RequestContext) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": "text/event-stream", **self.config.headers}
        key = self.api_key(ctx)
        if key:
            headers["authorization"] = f"Bearer {key}"
        return headers

    async def count_tokens(self, request: ChatRequest, ctx: RequestContext) -> int | None:
        """llama.cpp-style ``POST /tokenize {"content": text}`` → ``{"tokens": [...]}``; None on failure."""
        if not self.config.tokenize_path or self._client is None:
            return None
        url = httpx.URL(self.config.base_url).join(self.config.tokenize_path)
        body = _TOKENIZE.encode({"content": prompt_text(request)})
        try:
            with trio.fail_after(self.config.connect_timeout_s):
                resp = await self._client.post(url, content=body, headers=self._headers(ctx))
            if resp.status_code != 200:
                return None
            tokens = msgspec.json.decode(resp.content).get("tokens")
            return len(tokens) if isinstance(tokens, list) else None
        except (httpx.HTTPError, trio.TooSlowError, msgspec.DecodeError, AttributeError):
            return None

    async def stream(
        self,
        request: ChatRequest,
        out: trio.abc.SendChannel[Event],
        ctx: RequestContext,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        if self._client is None:
            await self.open()
        assert self._client is not None
        if self.config.api_key_env and not self.api_key(ctx):
            raise UpstreamError(f"{self.id}: no API key: set the environment variable {self.config.api_key_env}",
                                code="authentication", status=401)
        model = self.map_model(request.model)
        ctx.upstream_model = model
        body = encode_request(request, model=model, profile=self.profile, stream=True, lose=ctx.lose)
        secrets = tuple(s for s in (self.api_key(ctx),) if s)
        try:
            async with self._client.stream("POST", self.url, content=body, headers=self._headers(ctx)) as resp:
                if resp.status_code >= 400:
                    raw = await resp.aread()
                    info = parse_error_body(resp.status_code, raw, retry_after=resp.headers.get("retry-after"))
                    raise UpstreamError(
                        redact(f"{self.id}: {info.message}", secrets),
                        code=info.code,
                        status=info.status,
                        retry_after_s=info.retry_after_s if info.retry_after_s is not None else _retry_after(resp.headers),
                        retryable=resp.status_code in RETRYABLE_STATUS,
                    )
                task_status.started()
                await self._relay(resp, request, out, secrets)
        except httpx.TimeoutException as exc:
            # Before started() the runner may retry; after it, report in-stream.
            raise UpstreamError(f"{self.id}: timed out ({type(exc).__name__})", code="timeout",
                                retryable=isinstance(exc, httpx.ConnectTimeout)) from None
        except httpx.TransportError as exc:
            raise UpstreamError(redact(f"{self.id}: connection failed: {exc}", secrets) or f"{self.id}: connection failed",
                                code="overloaded", status=503, retryable=True) from None

    async def _relay(self, resp: httpx.Response, request: ChatRequest,
                     out: trio.abc.SendChannel[Event], secrets: tuple[str, ...]) -> None:
        sse = SseDecoder()
        decoder = ChatStreamDecoder(self.profile, stop=request.stop)
        comments = 0
        try:
            async for chunk in resp.aiter_raw():
                for frame in sse.feed(chunk):
                    for event in decoder.feed(frame):
                        await out.send(event)
                if sse.comments != comments:
                    comments = sse.comments
                    await out.send(Heartbeat())
            for frame in sse.close():
                for event in decoder.feed(frame):
                    await out.send(event)
            for event in decoder.finish():
                await out.send(event)
        except httpx.TimeoutException:
            await out.send(StreamError(error=ErrorInfo(
                code="timeout", status=504,
                message=f"{self.id}: no data for {self.config.idle_timeout_s:g}s (idle timeout)")))
        except httpx.TransportError as exc:
            await out.send(StreamError(error=ErrorInfo(
                code="overloaded", status=503,
                message=redact(f"{self.id}: connection lost mid-stream: {type(exc).__name__}", secrets))))


__all__ = ["OpenAIChatUpstream"]
