"""Neutral events → Anthropic Messages SSE, non-streaming bodies, error bodies (PROTOCOLS §1.5-1.7, §5.2).

Every SSE frame carries an ``event:`` line (the SDKs dispatch on it). Blocks are numbered by the
encoder in emission order. A ``redacted`` thinking block is a ``redacted_thinking`` block whose
``data`` (its signature) is in its ``content_block_start``, so that frame waits for the signature
(or the block's end) and the block has no deltas. Per-delta frames are byte templates built once per block; the rest
are msgspec Structs from models.py. Usage is held until ``MessageStop`` and sent cumulatively in
``message_delta``.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import msgspec

from pipeline.assemble import Completion, Search, Thinking, ToolCall
from pipeline.errors import GatewayError
from pipeline.events import (
    BlockStart,
    BlockStop,
    ErrorInfo,
    Event,
    Heartbeat,
    MessageStart,
    MessageStop,
    SearchHit,
    SearchResult,
    SignatureDelta,
    StreamError,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
    Usage,
)
from pipeline.model import ChatRequest
from pipeline.protocols.anthropic.client_decode_echo import NO_ECHO, AnthropicEcho
from pipeline.protocols.anthropic.helpers import cite, seal_hit
from pipeline.protocols.anthropic.models import (
    ContentBlock,
    ContentBlockStartEvent,
    ContentBlockStopEvent,
    ErrorEvent,
    ErrorObject,
    MessageBody,
    MessageDelta,
    MessageDeltaEvent,
    MessageStartEvent,
    MessageUsage,
    ModelEntry,
    ModelList,
    OutputTokensDetails,
    RedactedThinkingBlock,
    ServerToolUsage,
    ServerToolUseBlock,
    TextBlock,
    ThinkingBlock,
    TokenCount,
    ToolUseBlock,
    WebSearchError,
    WebSearchResultEntry,
    WebSearchToolResultBlock,
)
from pipeline.protocols.base import ErrorBody, FoldCollector, ModelInfo, retry_after_headers
from pipeline.sse import encode_sse

_ENC = msgspec.json.Encoder()
_DEC = msgspec.json.Decoder()

# Neutral error code → Anthropic error.type (PROTOCOLS §1.7, §5.9).
ERROR_TYPES: dict[str, str] = {
    "invalid_request": "invalid_request_error",
    "context_length_exceeded": "invalid_request_error",
    "unprocessable": "invalid_request_error",
    "method_not_allowed": "invalid_request_error",
    "unsupported_media_type": "invalid_request_error",
    "authentication": "authentication_error",
    "billing": "billing_error",
    "permission": "permission_error",
    "not_found": "not_found_error",
    "request_too_large": "request_too_large",
    "request_timeout": "timeout_error",
    "rate_limit": "rate_limit_error",
    "api_error": "api_error",
    "bad_gateway": "api_error",
    "overloaded": "overloaded_error",
    "timeout": "timeout_error",
}

_PING = encode_sse(b'{"type":"ping"}', "ping")
_MESSAGE_STOP = encode_sse(b'{"type":"message_stop"}', "message_stop")
_DELTA_HEAD = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
_DELTA_TAIL = b"}}\n\n"
_DELTA_KEYS = {
    "text": b',"delta":{"type":"text_delta","text":',
    "thinking": b',"delta":{"type":"thinking_delta","thinking":',
    "signature": b',"delta":{"type":"signature_delta","signature":',
    "tool_call": b',"delta":{"type":"input_json_delta","partial_json":',
}


def _message_id(upstream_id: str) -> str:
    if upstream_id.startswith("msg_"):
        return upstream_id
    clean = "".join(c for c in upstream_id if c.isascii() and c.isalnum())[:40]
    return "msg_" + (clean or secrets.token_hex(12))


def _usage(usage: Usage | None, estimate: int) -> MessageUsage:
    """Neutral usage (input includes cached) → Anthropic usage (input excludes cache reads)."""
    if usage is None:
        return MessageUsage(
            input_tokens=estimate, output_tokens=0, cache_creation_input_tokens=0, cache_read_input_tokens=0
        )
    details = OutputTokensDetails(usage.reasoning_tokens) if usage.reasoning_tokens else None
    return MessageUsage(
        input_tokens=max(usage.input_tokens - usage.cached_input_tokens, 0),
        output_tokens=usage.output_tokens,
        cache_creation_input_tokens=0,
        cache_read_input_tokens=usage.cached_input_tokens,
        output_tokens_details=details,
        server_tool_use=ServerToolUsage(usage.web_search_requests) if usage.web_search_requests else None,
    )


def search_block(result: SearchResult) -> WebSearchToolResultBlock:
    """A gateway search as Anthropic's ``web_search_tool_result`` (each hit sealed into
    ``encrypted_content``, so the client's history gives the model the same text again)."""
    if result.error is not None:
        return WebSearchToolResultBlock(result.call_id, WebSearchError(result.error))
    return WebSearchToolResultBlock(result.call_id, [
        WebSearchResultEntry(url=hit.url, title=hit.title or hit.url, encrypted_content=seal_hit(hit),
                             page_age=hit.page_age) for hit in result.hits])


# In-stream, Claude Code 2.1.330 retries ``overloaded_error`` the most readily (a mid-stream 529:
# streaming again, up to 3 times, before any visible output) and ``api_error`` as a server error
# (again after thinking only, else without streaming); once text was shown it keeps the partial
# answer, whatever the type, and asks for the rest. A broken, truncated or stalled upstream stream
# is therefore ``overloaded_error`` (PROTOCOLS §5.9: upstream timeout → overloaded).
_STREAM_OVERLOADED = frozenset({"bad_gateway", "timeout"})


def error_event(info: ErrorInfo) -> bytes:
    """The in-stream ``event: error`` frame for a neutral error."""
    kind = "overloaded_error" if info.code in _STREAM_OVERLOADED else ERROR_TYPES.get(info.code, "api_error")
    payload = ErrorEvent(ErrorObject(kind, info.message))
    return encode_sse(_ENC.encode(payload), "error")


class _OpenBlock:
    __slots__ = ("head", "kind", "neutral", "prefix", "wire")

    def __init__(self, neutral: int, wire: int, kind: str) -> None:
        self.neutral = neutral
        self.wire = wire
        self.kind = kind  # a neutral BlockKind, or "redacted" (a redacted_thinking block: no deltas)
        self.prefix = _DELTA_HEAD + str(wire).encode()
        self.head = self.prefix + _DELTA_KEYS.get(kind, b"")  # a delta of the block's own kind


class AnthropicStreamEncoder:
    """Neutral events → Anthropic SSE frames for one response.

    Args:
        request: the request as the stages shaped it; its ``model`` (the client's name) is echoed.
        echo: what the decoder saw (``AnthropicEcho``: ``thinking.display``).
        prompt_estimate: the request stages' estimate of the prompt tokens (token_budget's), sent
            as ``message_start``'s input tokens and used when the upstream reports no usage.
    """

    def __init__(self, request: ChatRequest, echo: AnthropicEcho = NO_ECHO, *,
                 prompt_estimate: int | None = None) -> None:
        self._model = request.model
        self._estimate = max(prompt_estimate or 0, 0)
        # display "omitted": thinking blocks carry only the signature (PROTOCOLS §1.4).
        self._omit_thinking = echo.thinking_display == "omitted"
        self._started = False
        self._done = False
        self._next_index = 0
        self._open: _OpenBlock | None = None
        self._redacted: _OpenBlock | None = None  # a redacted_thinking block whose start awaits its data
        self._usage: Usage | None = None
        self._hits: dict[str, SearchHit] = {}  # this answer's search results by URL, for citations
        self._said: list[str] | None = None  # the open text block's text, kept only once there are hits

    def feed(self, event: Event) -> list[bytes]:
        """Frames for one neutral event (empty once the stream has ended)."""
        kind = type(event)
        if kind is TextDelta or (kind is ThinkingDelta and not self._omit_thinking):  # per token
            # The identity test on type(event) narrows it, but mypy does not follow it through ``kind``.
            token: TextDelta | ThinkingDelta = event  # type: ignore[assignment]
            block, text = self._open, token.text
            if block is not None and block.neutral == token.index and text and not self._done \
                    and block.kind != "redacted":
                if self._said is not None and block.kind == "text":
                    self._said.append(text)
                return [block.head + _ENC.encode(text) + _DELTA_TAIL]
        if self._done:
            return []
        out: list[bytes] = []
        match event:
            case TextDelta(index=i, text=text) | ToolArgsDelta(index=i, fragment=text):
                self._delta(out, i, text, None)
            case ThinkingDelta(index=i, text=text):
                if not self._omit_thinking:
                    self._delta(out, i, text, None)
            case SignatureDelta(index=i, signature=sig):
                if self._redacted is not None and self._redacted.neutral == i:
                    self._redacted_start(out, sig)
                else:
                    self._delta(out, i, sig, "signature")
            case BlockStart():
                self._start(out)
                self._block_start(out, event)
            case BlockStop(index=i):
                current = self._open or self._redacted
                if current is not None and current.neutral == i:
                    self._block_stop(out)
            case SearchResult():
                self._start(out)
                self._block_stop(out)
                for hit in event.hits:
                    self._hits.setdefault(hit.url, hit)
                index = self._next_index
                self._next_index += 1
                out.append(encode_sse(_ENC.encode(ContentBlockStartEvent(index, search_block(event))),
                                      "content_block_start"))
                out.append(encode_sse(_ENC.encode(ContentBlockStopEvent(index)), "content_block_stop"))
            case MessageStart(message_id=mid):
                self._start(out, mid)
            case Usage():
                self._usage = event
            case MessageStop(stop_reason=reason, stop_sequence=seq):
                self._start(out)
                self._block_stop(out)
                usage = _usage(self._usage, self._estimate)
                delta = MessageDeltaEvent(MessageDelta(reason, seq), usage)
                out.append(encode_sse(_ENC.encode(delta), "message_delta"))
                out.append(_MESSAGE_STOP)
                self._done = True
            case StreamError(error=info):
                out.extend(self.error(info))
            case Heartbeat():
                self._start(out)
                out.append(_PING)
        return out

    def error(self, info: ErrorInfo) -> list[bytes]:
        """The ``event: error`` frame; the stream is over after it."""
        if self._done:
            return []
        self._done = True
        return [error_event(info)]

    def close(self) -> list[bytes]:
        """Nothing follows ``message_stop`` in Anthropic streams."""
        return []

    def _start(self, out: list[bytes], upstream_id: str = "") -> None:
        if self._started:
            return
        self._started = True
        message = MessageBody(
            id=_message_id(upstream_id),
            role="assistant",
            model=self._model,
            content=[],
            stop_reason=None,
            stop_sequence=None,
            usage=MessageUsage(
                input_tokens=self._estimate,
                output_tokens=1,
                cache_creation_input_tokens=0,
                cache_read_input_tokens=0,
            ),
        )
        out.append(encode_sse(_ENC.encode(MessageStartEvent(message)), "message_start"))

    def _block_start(self, out: list[bytes], event: BlockStart) -> None:
        self._block_stop(out)  # at most one open block; never expected to close anything
        block: ContentBlock
        if event.block == "thinking" and event.redacted:
            self._redacted = _OpenBlock(event.index, self._next_index, "redacted")
            self._next_index += 1
            return
        if event.block == "thinking":
            # The empty signature key must be present (PROTOCOLS §1.6).
            block = ThinkingBlock(thinking="", signature="")
        elif event.block == "tool_call" and event.server:
            # The hosted tool's own name, whatever the function upstream is called.
            block = ServerToolUseBlock(id=event.call_id or "srvtoolu_" + secrets.token_hex(12), name="web_search",
                                       input={})
        elif event.block == "tool_call":
            call_id = event.call_id or "toolu_" + secrets.token_hex(12)
            block = ToolUseBlock(id=call_id, name=event.name or "", input={})
        else:
            block = TextBlock(text="")
            self._said = [] if self._hits else None
        index = self._next_index
        self._next_index += 1
        self._open = _OpenBlock(event.index, index, event.block)
        out.append(encode_sse(_ENC.encode(ContentBlockStartEvent(index, block)), "content_block_start"))

    def _delta(self, out: list[bytes], index: int, text: str, key: str | None) -> None:
        block = self._open
        if not text or block is None or block.neutral != index:
            # Empty fragments are never sent: an empty-args tool call gets no delta (§5.2).
            return
        if (key == "signature" and block.kind != "thinking") or block.kind == "redacted":
            return
        out.append(block.prefix + _DELTA_KEYS[key or block.kind] + _ENC.encode(text) + _DELTA_TAIL)

    def _redacted_start(self, out: list[bytes], data: str) -> None:
        """The awaited ``redacted_thinking`` block's start, with its data; it is the open block then."""
        block, self._redacted = self._redacted, None
        assert block is not None
        start = ContentBlockStartEvent(block.wire, RedactedThinkingBlock(data=data))
        out.append(encode_sse(_ENC.encode(start), "content_block_start"))
        self._open = block

    def _block_stop(self, out: list[bytes]) -> None:
        if self._redacted is not None:  # it ended without data: its start, empty, then its stop
            self._redacted_start(out, "")
        if self._open is None:
            return
        if self._said is not None and self._open.kind == "text":  # the results this text quotes
            for citation in cite("".join(self._said), self._hits):
                delta = {"type": "content_block_delta", "index": self._open.wire,
                         "delta": {"type": "citations_delta", "citation": citation}}
                out.append(encode_sse(_ENC.encode(delta), "content_block_delta"))
            self._said = None
        out.append(encode_sse(_ENC.encode(ContentBlockStopEvent(self._open.wire)), "content_block_stop"))
        self._open = None


class AnthropicCollector(FoldCollector[AnthropicEcho]):
    """Neutral events → one non-streaming ``Message`` body: the shared fold, then ``render_message``."""

    __slots__ = ()

    def __init__(self, request: ChatRequest, echo: AnthropicEcho = NO_ECHO, *,
                 prompt_estimate: int | None = None) -> None:
        super().__init__(request, echo, prompt_estimate=prompt_estimate)

    def render(self, completion: Completion) -> bytes:
        return render_message(completion, self._request, self._echo, prompt_estimate=self._estimate)


def render_message(completion: Completion, request: ChatRequest, echo: AnthropicEcho = NO_ECHO, *,
                   prompt_estimate: int | None = None) -> bytes:
    """A completion as Anthropic's ``Message``: its blocks in order (thinking with its signature,
    text with ``display: omitted`` emptied; a tool call's arguments parsed into ``input``), the
    client's model name, usage with cache reads split out (the prompt estimate when the upstream
    reported none)."""
    omit_thinking = echo.thinking_display == "omitted"
    content: list[ContentBlock] = []
    hits: dict[str, SearchHit] = {}
    for block in completion.blocks:
        if isinstance(block, Thinking) and block.redacted:
            content.append(RedactedThinkingBlock(data=block.signature or ""))
        elif isinstance(block, Thinking):
            content.append(ThinkingBlock(thinking="" if omit_thinking else block.text, signature=block.signature or ""))
        elif isinstance(block, Search):
            content.append(search_block(block.result))
            for hit in block.result.hits:
                hits.setdefault(hit.url, hit)
        elif isinstance(block, ToolCall) and block.server:
            content.append(ServerToolUseBlock(id=block.call_id or "srvtoolu_" + secrets.token_hex(12),
                                              name="web_search", input=_tool_input(block.arguments)))
        elif isinstance(block, ToolCall):
            content.append(ToolUseBlock(id=block.call_id or "toolu_" + secrets.token_hex(12), name=block.name or "",
                                        input=_tool_input(block.arguments)))
        else:
            content.append(TextBlock(text=block.text, citations=(cite(block.text, hits) or None) if hits else None))
    message = MessageBody(
        id=_message_id(completion.message_id),
        role="assistant",
        model=request.model,
        content=content,
        stop_reason=completion.stop_reason or "end_turn",
        stop_sequence=completion.stop_sequence,
        usage=_usage(completion.usage, max(prompt_estimate or 0, 0)),
    )
    return _ENC.encode(message)


def _tool_input(args: str) -> object:
    """Parsed tool arguments; ``{}`` when empty, ``{"_raw": text}`` when not a JSON object."""
    if not args.strip():
        return {}
    try:
        value = _DEC.decode(args)
    except msgspec.DecodeError:
        return {"_raw": args}
    return value if isinstance(value, dict) else {"_raw": args}


def _message(code: str, message: str) -> str:
    # Claude Code compacts when it reads "prompt is too long" (../shared/PROTOCOLS.md §5.9).
    if code == "context_length_exceeded" and not message.startswith("prompt is too long"):
        return f"prompt is too long: {message}"
    return message


def render_error(err: GatewayError) -> ErrorBody:
    """An HTTP error response in Anthropic's shape (``request_id`` omitted)."""
    kind = ERROR_TYPES.get(err.code, "api_error")
    headers = [(b"content-type", b"application/json")]
    status = err.status
    if err.code == "overloaded":
        status = 529
    elif err.code == "rate_limit":
        status = 429
        headers += retry_after_headers(err.retry_after_s)
    elif err.code == "context_length_exceeded":
        status = 400
    body = _ENC.encode(ErrorEvent(ErrorObject(kind, _message(err.code, err.message))))
    return ErrorBody(status, headers, body)


def render_models(models: Sequence[ModelInfo]) -> bytes:
    """``GET /v1/models`` in Anthropic's list shape."""
    data = [
        ModelEntry(
            id=m.id,
            display_name=m.id,
            created_at="2026-01-01T00:00:00Z",
            max_input_tokens=m.context_window,
            max_tokens=m.max_output_tokens,
        )
        for m in models
    ]
    first = data[0].id if data else None
    last = data[-1].id if data else None
    return _ENC.encode(ModelList(data=data, has_more=False, first_id=first, last_id=last))


def render_count(input_tokens: int) -> bytes:
    """``POST /v1/messages/count_tokens`` response."""
    return _ENC.encode(TokenCount(input_tokens))


__all__ = [
    "ERROR_TYPES",
    "AnthropicCollector",
    "AnthropicStreamEncoder",
    "error_event",
    "render_count",
    "render_error",
    "render_message",
    "render_models",
    "search_block",
]
