"""Upstream side: Anthropic Messages SSE events → neutral events, and its HTTP error bodies.

``MessagesStreamDecoder`` maps the upstream's blocks one to one (renumbered 0, 1, … in order;
server-side blocks, which no neutral block carries, are skipped and recorded as a loss; so is
``redacted_thinking`` unless ``redacted=True``, for an Anthropic client of an upstream that takes
its own back (profile ``keep_client_thinking``): then it is a ``redacted`` thinking block whose
data is its signature, as ``thinking`` blocks' are):
``thinking_delta`` → ``ThinkingDelta``; the block's ``signature_delta``s, at its stop, → one
``SignatureDelta`` (what a client without thinking_filter echoes) and one ``UpstreamSeal`` (what
thinking_filter keeps in its envelope for this upstream); ``input_json_delta`` → ``ToolArgsDelta``;
usage from ``message_start`` and the cumulative ``message_delta``; ``message_stop`` → ``Usage`` +
``MessageStop``; an ``error`` event → ``StreamError``. A stream that ends before
``message_stop`` is a ``StreamError`` (``bad_gateway``).

``parse_error_body`` reads Anthropic's ``{"type": "error", "error": {type, message}}`` and the
OpenAI-style ``{"error": {message, type, code}}`` DeepSeek's Anthropic endpoint answers with.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from typing import Any

import msgspec

from pipeline.errors import CODES
from pipeline.events import (
    BlockKind,
    BlockStart,
    BlockStop,
    ErrorInfo,
    Event,
    MessageStart,
    MessageStop,
    SignatureDelta,
    StopReason,
    StreamError,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
    UpstreamSeal,
    Usage,
)
from pipeline.protocols.openai import upstream_code
from pipeline.sse import SseFrame

_DECODER = msgspec.json.Decoder()
_ENCODER = msgspec.json.Encoder()
MAX_MESSAGE_CHARS = 2000
_ENDED_EARLY = "upstream stream ended before message_stop"
_CONTEXT_TEXT = re.compile(r"prompt is too long|context[ _]length|maximum context|context[ _]window", re.I)
# Anthropic error.type → neutral code.
ERROR_CODES: dict[str, str] = {
    "invalid_request_error": "invalid_request",
    "authentication_error": "authentication",
    "billing_error": "billing",
    "permission_error": "permission",
    "not_found_error": "not_found",
    "request_too_large": "request_too_large",
    "rate_limit_error": "rate_limit",
    "api_error": "api_error",
    "overloaded_error": "overloaded",
    "timeout_error": "timeout",
}
_STOPS: dict[str, StopReason] = {
    "end_turn": "end_turn",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "tool_use": "tool_use",
    "refusal": "refusal",
    "pause_turn": "end_turn",
    "model_context_window_exceeded": "max_tokens",
}
_KINDS: dict[str, BlockKind] = {"text": "text", "thinking": "thinking", "tool_use": "tool_call"}


class _Block:
    __slots__ = ("args", "index", "kind", "signature")

    def __init__(self, index: int, kind: BlockKind) -> None:
        self.index = index
        self.kind = kind
        self.signature: list[str] = []
        self.args = False  # a tool_use block got input


class MessagesStreamDecoder:
    """Incremental: ``feed_many(frames) -> events``, ``finish() -> events`` at the end of bytes."""

    def __init__(self, *, lose: Callable[[str, str], None] | None = None, redacted: bool = False) -> None:
        self._lose = lose  # what no neutral block carries is recorded here, never dropped in silence
        self._redacted = redacted  # redacted_thinking is carried (to an Anthropic client), not dropped
        self._started = False
        self._done = False
        self._next = 0
        self._blocks: dict[int, _Block] = {}  # upstream index → its neutral block
        self._input = 0
        self._cached = 0
        self._output = 0
        self._stop: StopReason = "end_turn"
        self._sequence: str | None = None

    @property
    def done(self) -> bool:
        """No more events will come."""
        return self._done

    def feed_many(self, frames: list[SseFrame]) -> list[Event]:
        out: list[Event] = []
        for frame in frames:
            if self._done:
                break
            if frame.data:
                self._frame(frame, out)
        return out

    def finish(self) -> list[Event]:
        if self._done:
            return []
        self._done = True
        return [StreamError(error=ErrorInfo(code="bad_gateway", message=_ENDED_EARLY, status=502))]

    def _frame(self, frame: SseFrame, out: list[Event]) -> None:
        try:
            payload = _DECODER.decode(frame.data)
        except msgspec.DecodeError as exc:
            self._fail(ErrorInfo(code="bad_gateway", message=f"malformed event from upstream: {exc}", status=502), out)
            return
        if not isinstance(payload, dict):
            return
        kind = payload.get("type") or frame.event
        if kind == "content_block_delta":
            self._delta(payload, out)
        elif kind == "content_block_start":
            self._block_start(payload, out)
        elif kind == "content_block_stop":
            self._block_stop(payload, out)
        elif kind == "message_start":
            self._message_start(payload.get("message"), out)
        elif kind == "message_delta":
            self._message_delta(payload)
        elif kind == "message_stop":
            self._end(out)
        elif kind == "error" or (kind is None and "error" in payload):  # an OpenAI-style error chunk too
            self._fail(error_from_payload(payload), out)
        # ping and anything newer: nothing to say

    def _message_start(self, message: Any, out: list[Event]) -> None:
        if self._started or not isinstance(message, dict):
            return
        self._started = True
        self._usage(message.get("usage"))
        out.append(MessageStart(message_id=str(message.get("id") or "msg_" + secrets.token_hex(12)),
                                model=str(message.get("model") or "")))

    def _usage(self, usage: Any) -> None:
        if not isinstance(usage, dict):
            return
        fresh = usage.get("input_tokens")
        read = usage.get("cache_read_input_tokens")
        made = usage.get("cache_creation_input_tokens")
        if isinstance(fresh, int) or isinstance(read, int):
            self._cached = read if isinstance(read, int) else self._cached
            made = made if isinstance(made, int) else 0
            self._input = (fresh if isinstance(fresh, int) else 0) + self._cached + made
        if isinstance(usage.get("output_tokens"), int):
            self._output = usage["output_tokens"]  # cumulative in message_delta

    def _block_start(self, payload: dict[str, Any], out: list[Event]) -> None:
        block = payload.get("content_block")
        if not isinstance(block, dict):
            return
        kind = _KINDS.get(str(block.get("type")))
        if kind is None and self._redacted and block.get("type") == "redacted_thinking":
            self._ensure_started(out)
            neutral = _Block(self._next, "thinking")
            self._next += 1
            self._blocks[_index(payload)] = neutral
            data = block.get("data")
            if isinstance(data, str) and data:
                neutral.signature.append(data)
            out.append(BlockStart(index=neutral.index, block="thinking", redacted=True))
            return
        if kind is None:  # redacted_thinking, server tool blocks: no neutral block carries them
            if self._lose is not None:
                self._lose("upstream_block_dropped",
                           f"the upstream's {block.get('type')} block (no neutral block carries it)")
            return
        self._ensure_started(out)
        neutral = _Block(self._next, kind)
        self._next += 1
        self._blocks[_index(payload)] = neutral
        if kind == "tool_call":
            call_id = str(block.get("id") or "toolu_" + secrets.token_hex(12))
            out.append(BlockStart(index=neutral.index, block=kind, call_id=call_id, name=str(block.get("name") or "")))
            given = block.get("input")
            if isinstance(given, dict) and given:  # a whole input up front (non-streaming style)
                neutral.args = True
                out.append(ToolArgsDelta(index=neutral.index, fragment=_ENCODER.encode(given).decode()))
            return
        out.append(BlockStart(index=neutral.index, block=kind))
        text = block.get("thinking" if kind == "thinking" else "text")
        if isinstance(text, str) and text:
            out.append((ThinkingDelta if kind == "thinking" else TextDelta)(index=neutral.index, text=text))
        signature = block.get("signature")
        if kind == "thinking" and isinstance(signature, str) and signature:
            neutral.signature.append(signature)

    def _delta(self, payload: dict[str, Any], out: list[Event]) -> None:
        block = self._blocks.get(_index(payload))
        delta = payload.get("delta")
        if block is None or not isinstance(delta, dict):
            return
        kind = delta.get("type")
        if kind == "text_delta":
            text = delta.get("text")
            if isinstance(text, str) and text:
                out.append(TextDelta(index=block.index, text=text))
        elif kind == "thinking_delta":
            text = delta.get("thinking")
            if isinstance(text, str) and text:
                out.append(ThinkingDelta(index=block.index, text=text))
        elif kind == "signature_delta":
            signature = delta.get("signature")
            if isinstance(signature, str) and signature:
                block.signature.append(signature)
        elif kind == "input_json_delta":
            fragment = delta.get("partial_json")
            if isinstance(fragment, str) and fragment:
                block.args = True
                out.append(ToolArgsDelta(index=block.index, fragment=fragment))

    def _block_stop(self, payload: dict[str, Any], out: list[Event]) -> None:
        block = self._blocks.pop(_index(payload), None)
        if block is None:
            return
        if block.signature:
            signature = "".join(block.signature)
            out.append(SignatureDelta(index=block.index, signature=signature))
            out.append(UpstreamSeal(index=block.index, data=signature))
        if block.kind == "tool_call" and not block.args:
            out.append(ToolArgsDelta(index=block.index, fragment="{}"))
        out.append(BlockStop(index=block.index))

    def _message_delta(self, payload: dict[str, Any]) -> None:
        delta = payload.get("delta")
        if isinstance(delta, dict):
            reason = delta.get("stop_reason")
            if isinstance(reason, str):
                self._stop = _STOPS.get(reason, "end_turn")
            sequence = delta.get("stop_sequence")
            self._sequence = sequence if isinstance(sequence, str) else None
        self._usage(payload.get("usage"))

    def _ensure_started(self, out: list[Event]) -> None:
        if not self._started:
            self._started = True
            out.append(MessageStart(message_id="msg_" + secrets.token_hex(12), model=""))

    def _end(self, out: list[Event]) -> None:
        self._ensure_started(out)
        for index in list(self._blocks):  # a block left open: close it
            self._block_stop({"index": index}, out)
        self._done = True
        if self._input or self._output:
            out.append(Usage(input_tokens=self._input, output_tokens=self._output, cached_input_tokens=self._cached))
        out.append(MessageStop(stop_reason=self._stop, stop_sequence=self._sequence))

    def _fail(self, info: ErrorInfo, out: list[Event]) -> None:
        self._done = True
        out.append(StreamError(error=info))


def _index(payload: dict[str, Any]) -> int:
    index = payload.get("index")
    return index if isinstance(index, int) else -1


def _fields(payload: Any) -> tuple[str | None, str | None]:
    """(message, type) of an Anthropic or OpenAI-style error object."""
    if not isinstance(payload, dict):
        return (payload if isinstance(payload, str) and payload else None), None
    inner = payload.get("error")
    obj = inner if isinstance(inner, dict) else payload
    message = obj.get("message")
    etype = obj.get("type")
    if isinstance(inner, str) and inner:
        message = inner
    return (message if isinstance(message, str) and message else None), (etype if isinstance(etype, str) else None)


def error_from_payload(payload: Any) -> ErrorInfo:
    """A neutral ``ErrorInfo`` for an in-stream ``error`` event."""
    message, etype = _fields(payload)
    message = message or "upstream reported an error"
    code = ERROR_CODES.get(etype or "", "api_error")
    if code == "invalid_request" and _CONTEXT_TEXT.search(message):
        code = "context_length_exceeded"
    return ErrorInfo(code=code, message=message[:MAX_MESSAGE_CHARS], status=CODES[code])


def parse_error_body(status: int, body: bytes, *, retry_after: str | None = None) -> ErrorInfo:
    """A neutral ``ErrorInfo`` for an upstream HTTP error answer, keeping its message."""
    try:
        payload: Any = _DECODER.decode(body) if body.strip() else None
    except msgspec.DecodeError:
        payload = None
    message, etype = _fields(payload)
    if not message:
        text = body.decode("utf-8", "replace").strip()
        message = text if text else f"upstream returned HTTP {status}"
    code = upstream_code(status)
    if code == "invalid_request" and _CONTEXT_TEXT.search(message):
        code = "context_length_exceeded"
    elif status == 529 or etype == "overloaded_error":
        code = "overloaded"
    wait: float | None = None
    if retry_after and code in ("rate_limit", "overloaded"):
        try:
            wait = max(0.0, float(retry_after.strip()))
        except ValueError:
            wait = None
    return ErrorInfo(code=code, message=message[:MAX_MESSAGE_CHARS], status=CODES[code], retry_after_s=wait)


__all__ = ["ERROR_CODES", "MessagesStreamDecoder", "error_from_payload", "parse_error_body"]
