"""What every HTTP + SSE upstream shares: ``SseUpstream``, the base of ``openai_chat`` and of any
other wire protocol an upstream speaks.

A subclass says how its protocol looks (``path``, ``request_headers``, ``encode``, ``decoder``,
``error_info``); this class does the rest the same way for all: the HTTP client (the gateway's
own transport, or httpx's), POST with ``stream: true`` (non-streaming clients are served from the
same stream), then bytes → ``SseDecoder`` → the protocol's decoder → events, emitted into the
attempt one socket read at a time. The attempt commits at the first event beyond
``MessageStart``: failures before it raise ``UpstreamError`` (``retryable`` for connect errors,
timeouts, 429, 5xx and early stream errors); after it they end the stream with ``StreamError``.
Upstream timeouts are ``overloaded``; an idle watch and a queue limit bound a silent stream.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import ClassVar, Protocol

import httpx
import msgspec
import trio

from pipeline.attempt import Attempt
from pipeline.errors import UpstreamError, redact
from pipeline.events import ErrorInfo, Event, Heartbeat, StreamError
from pipeline.model import ChatRequest
from pipeline.sse import SseDecoder, SseFrame
from pipeline.stage import RequestContext
from pipeline.tokens import prompt_text
from pipeline.upstream import Upstream, UpstreamConfig
from upstreams.response_body import ResponseBody
from upstreams.transport import LeanClient, StreamTransport

_TOKENIZE = msgspec.json.Encoder()
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class StreamDecoder(Protocol):
    """An upstream protocol's answer decoder: SSE frames → neutral events, incrementally."""

    def feed_many(self, frames: list[SseFrame]) -> list[Event]: ...

    def finish(self) -> list[Event]:
        """Events at the end of the bytes (a ``StreamError`` if the answer was cut short)."""
        ...

    @property
    def done(self) -> bool:
        """The answer ended before the bytes did (a matched stop string): stop reading."""
        ...


class SseUpstream(Upstream):
    """An upstream reached by one HTTP POST whose answer is an SSE stream."""

    type_name: ClassVar[str] = "sse"

    def __init__(self, config: UpstreamConfig, *, upstream_id: str,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(config, upstream_id=upstream_id)
        self._transport = transport
        self._client: httpx.AsyncClient | LeanClient | None = None
        self.url = config.base_url.rstrip("/") + self.path()

    # What a protocol says (a subclass overrides these).

    def path(self) -> str:
        """The path appended to ``base_url``."""
        raise NotImplementedError

    def request_headers(self, key: str | None) -> dict[str, str]:
        """The HTTP headers of a request, with the key (``None``: the upstream needs none)."""
        headers = {"content-type": "application/json", "accept": "text/event-stream", **self.config.headers}
        if key:
            headers["authorization"] = f"Bearer {key}"
        return headers

    def encode(self, request: ChatRequest, attempt: Attempt, ctx: RequestContext) -> bytes:
        """The request body for ``attempt.model``, streamed; what it cannot carry goes to ``ctx.lose``."""
        raise NotImplementedError

    def decoder(self, request: ChatRequest, ctx: RequestContext) -> StreamDecoder:
        """A fresh decoder for one answer (what it cannot carry to the client goes to ``ctx.lose``)."""
        raise NotImplementedError

    def error_info(self, status: int, body: bytes, retry_after: str | None) -> ErrorInfo:
        """The neutral error of an HTTP error answer (status ≥ 400), keeping the upstream's message."""
        raise NotImplementedError

    def _timeout(self) -> httpx.Timeout:
        c = self.config
        return httpx.Timeout(connect=c.connect_timeout_s, read=c.idle_timeout_s, write=c.idle_timeout_s,
                             pool=c.connect_timeout_s)

    async def open(self) -> None:
        if self._client is None:
            limits = httpx.Limits(max_connections=self.config.max_connections,
                                  max_keepalive_connections=min(64, self.config.max_connections))
            if self._transport is None and self.config.http_client == "fast":
                self._client = LeanClient(StreamTransport(max_connections=self.config.max_connections),
                                          timeout=self._timeout())
            else:
                self._client = httpx.AsyncClient(transport=self._transport, timeout=self._timeout(), limits=limits)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def count_tokens(self, request: ChatRequest, ctx: RequestContext) -> int | None:
        """llama.cpp-style ``POST /tokenize {"content": text}`` → ``{"tokens": [...]}``; None on failure."""
        if not self.config.tokenize_path or self._client is None:
            return None
        url = httpx.URL(self.config.base_url).join(self.config.tokenize_path)
        body = _TOKENIZE.encode({"content": prompt_text(request)})
        try:
            with trio.fail_after(self.config.connect_timeout_s):
                resp = await self._client.post(url, content=body, headers=self.request_headers(self.api_key(ctx)))
            if resp.status_code != 200:
                return None
            tokens = msgspec.json.decode(resp.content).get("tokens")
            return len(tokens) if isinstance(tokens, list) else None
        except (httpx.HTTPError, trio.TooSlowError, msgspec.DecodeError, AttributeError):
            return None

    async def stream(self, request: ChatRequest, attempt: Attempt, ctx: RequestContext) -> None:
        if self._client is None:
            await self.open()
        assert self._client is not None
        body = self.encode(request, attempt, ctx)
        key = self.api_key(ctx)
        attempt.hide(key)
        secrets = (key,) if key else ()
        try:
            async with self._client.stream("POST", self.url, content=body, headers=self.request_headers(key)) as resp:
                if resp.status_code >= 400:
                    raw = await resp.aread()
                    info = self.error_info(resp.status_code, raw, resp.headers.get("retry-after"))
                    raise UpstreamError(
                        redact(f"{self.id}: {info.message}", secrets),
                        code=info.code,
                        status=info.status,
                        retry_after_s=info.retry_after_s,
                        retryable=resp.status_code in RETRYABLE_STATUS,
                    )
                await self._relay(resp, self.decoder(request, ctx), attempt)
        except httpx.TimeoutException as exc:  # before the relay (which reports its own): retry
            raise UpstreamError(f"{self.id}: {_timeout_text(exc, self.config)}", code="overloaded", status=503,
                                retryable=True) from None
        except httpx.TransportError as exc:
            message = redact(f"{self.id}: connection failed: {exc}", secrets) or f"{self.id}: connection failed"
            raise UpstreamError(message, code="overloaded", status=503, retryable=True) from None

    async def _relay(self, resp: httpx.Response, decoder: StreamDecoder, attempt: Attempt) -> None:
        """Relay the body as events; every failure ends in ``StreamError`` (or, before the commit,
        ``UpstreamError``). The idle watch runs beside it."""
        watch = _IdleWatch(self.config.idle_timeout_s)
        early: UpstreamError | None = None
        failure: ErrorInfo | None = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch.run)
            try:
                with watch.scope:
                    failure = await self._pump(_body(resp), decoder, attempt, watch)
            except UpstreamError as exc:  # raised again outside the nursery, so not in a group
                early = exc
            finally:
                nursery.cancel_scope.cancel()
        if early is not None:
            raise early
        if watch.scope.cancelled_caught:
            failure = ErrorInfo(code="overloaded", status=503,
                                message=f"{self.id}: no data for {watch.limit:g}s (idle timeout)")
        if failure is not None:
            await attempt.emit([StreamError(error=failure)])

    async def _pump(self, chunks: AsyncIterator[bytes], decoder: StreamDecoder, attempt: Attempt,
                    watch: _IdleWatch) -> ErrorInfo | None:
        """Bytes → frames → events. Phase 1 runs until data arrived and the client's status is
        decided; ``queue_timeout_s`` bounds a stream of nothing but keep-alive comments."""
        sse = SseDecoder()
        comments = 0
        now = trio.current_time
        with trio.move_on_after(self.config.queue_timeout_s) as queue:
            try:
                while True:  # phase 1: queued, or deciding whether to commit
                    watch.since = now()
                    chunk = await anext(chunks, None)
                    watch.since = None
                    if chunk is None:
                        break
                    frames = sse.feed(chunk)
                    events = decoder.feed_many(frames)
                    if sse.comments != comments:
                        comments = sse.comments
                        events.append(Heartbeat())
                    await attempt.emit(events)
                    if decoder.done:
                        return None
                    if frames:  # data: no longer queued
                        queue.deadline = math.inf
                        if attempt.committed:
                            break
                while chunk is not None:  # phase 2: the hot path
                    watch.since = now()
                    chunk = await anext(chunks, None)
                    watch.since = None
                    if chunk is None:
                        break
                    events = decoder.feed_many(sse.feed(chunk))
                    if sse.comments != comments:
                        comments = sse.comments
                        events.append(Heartbeat())
                    if events:
                        await attempt.emit(events)
                    if decoder.done:
                        return None
                await attempt.emit(decoder.feed_many(sse.close()) + decoder.finish())
                return None
            except httpx.TimeoutException:
                return ErrorInfo(code="overloaded", status=503,
                                 message=f"{self.id}: no data for {watch.limit:g}s (idle timeout)")
            except httpx.TransportError as exc:
                return ErrorInfo(code="overloaded", status=503,
                                 message=f"{self.id}: connection lost mid-stream: {type(exc).__name__}")
        return ErrorInfo(code="overloaded", status=503, message=(
            f"{self.id}: still queued after {self.config.queue_timeout_s:g}s (keep-alive comments only; queue limit)"))


class _IdleWatch:
    """Cancels ``scope`` once one read has waited ``limit`` seconds; time spent blocked on a slow
    client does not count. httpx enforces its read timeout on sockets only; this holds for every
    transport (the in-process simulator too), for ~0.5 µs a chunk instead of a trio deadline reset
    per chunk (6-12 µs)."""

    __slots__ = ("limit", "scope", "since")

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.scope = trio.CancelScope()
        self.since: float | None = None  # when the pending read began; None while not reading

    async def run(self) -> None:
        while True:
            since, now = self.since, trio.current_time()
            if since is not None and now - since >= self.limit:
                self.scope.cancel()
                return
            await trio.sleep_until((now if since is None else since) + self.limit)


def _body(resp: httpx.Response) -> AsyncIterator[bytes]:
    """The body's pieces. ``StreamTransport``'s body is read directly (one generator less per read)
    and without its own read timer: ``_IdleWatch`` covers body reads."""
    stream = resp.stream
    return stream.watched() if isinstance(stream, ResponseBody) else resp.aiter_raw()


def _timeout_text(exc: httpx.TimeoutException, config: UpstreamConfig) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return f"could not connect within {config.connect_timeout_s:g}s (connect timeout)"
    if isinstance(exc, httpx.PoolTimeout):
        return f"no free connection within {config.connect_timeout_s:g}s (pool timeout)"
    if isinstance(exc, httpx.WriteTimeout):
        return f"took none of the request for {config.idle_timeout_s:g}s (write timeout)"
    return f"no answer within {config.idle_timeout_s:g}s ({type(exc).__name__})"


__all__ = ["RETRYABLE_STATUS", "SseUpstream", "StreamDecoder"]
