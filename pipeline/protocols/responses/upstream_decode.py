"""Upstream side: an OpenAI Responses SSE stream → neutral events.

Each output item is one neutral block, in the order the items are added: a ``reasoning`` item a
thinking block (its summary deltas, or ``response.reasoning_text.delta`` for servers that stream
raw reasoning, DeepSeek's; whichever comes first for the item), a ``message`` a text block (output
text and refusals), a ``function_call`` or ``custom_tool_call`` a tool-call block (a custom call's
raw input becomes the neutral ``{"input": ...}`` arguments, escaped fragment by fragment). A
reasoning item's ``id`` and ``encrypted_content`` end its block as one ``UpstreamSeal``.
``response.completed`` / ``incomplete`` give ``Usage`` and ``MessageStop``; ``response.failed``
and ``error`` a ``StreamError``. Strict where a translation would go wrong silently:
``sequence_number`` must increase, deltas of an item already closed, and a stream that ends
without a terminal event are errors. ``[DONE]`` (some servers) is ignored; DeepSeek sends none.
"""

from __future__ import annotations

from typing import Any

import msgspec

from pipeline.events import (
    BlockKind,
    BlockStart,
    BlockStop,
    ErrorInfo,
    Event,
    MessageStart,
    MessageStop,
    StopReason,
    StreamError,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
    UpstreamSeal,
    Usage,
)
from pipeline.protocols.openai import error_from_payload
from pipeline.protocols.responses.helpers import seal_data
from pipeline.sse import SseFrame

_ENCODER = msgspec.json.Encoder()
_CUSTOM_HEAD = '{"input":"'
_CUSTOM_TAIL = '"}'


class _Text(msgspec.Struct):
    text: str = ""
    type: str = ""


class _Details(msgspec.Struct):
    cached_tokens: int = 0
    reasoning_tokens: int = 0


class _Usage(msgspec.Struct):
    input_tokens: int = 0
    output_tokens: int = 0
    input_tokens_details: _Details | None = None
    output_tokens_details: _Details | None = None


class _Error(msgspec.Struct):
    message: str = ""
    code: str | None = None
    type: str | None = None


class _Reason(msgspec.Struct):
    reason: str | None = None


class _Item(msgspec.Struct):
    type: str = ""
    id: str | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    input: str | None = None
    encrypted_content: str | None = None
    summary: list[_Text] | None = None
    content: list[_Text] | None = None


class _Response(msgspec.Struct):
    id: str | None = None
    model: str | None = None
    usage: _Usage | None = None
    error: _Error | None = None
    incomplete_details: _Reason | None = None


class _Event(msgspec.Struct):
    type: str = ""
    sequence_number: int | None = None
    item_id: str | None = None
    output_index: int | None = None
    summary_index: int | None = None
    delta: str | None = None
    item: _Item | None = None
    response: _Response | None = None
    code: str | None = None
    message: str | None = None


_DECODER = msgspec.json.Decoder(_Event)


class _Block:
    """The neutral block of one output item."""

    __slots__ = ("call", "custom", "index", "kind", "part", "source", "streamed")

    def __init__(self, kind: BlockKind, index: int, *, custom: bool = False) -> None:
        self.kind = kind
        self.index = index
        self.custom = custom
        self.call = kind == "tool_call"
        self.streamed = False  # a delta was emitted (else the done item's text is)
        self.source: str | None = None  # reasoning: "summary" or "text", whichever came first
        self.part: int | None = None  # the summary part being streamed


class ResponsesStreamDecoder:
    """Incremental: ``feed_many(frames) -> events``, ``finish() -> events`` at the end of bytes."""

    def __init__(self) -> None:
        self._started = False
        self._done = False
        self._seq = -1
        self._next = 0
        self._open: _Block | None = None
        self._open_key: str | None = None
        self._closed: set[str] = set()
        self._calls = 0

    @property
    def done(self) -> bool:
        """No more events will come."""
        return self._done

    def feed_many(self, frames: list[SseFrame]) -> list[Event]:
        out: list[Event] = []
        for frame in frames:
            if self._done:
                break
            data = frame.data
            if not data or (data[:1] == b"[" and data.strip() == b"[DONE]"):
                continue
            try:
                event = _DECODER.decode(data)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                self._fail(ErrorInfo(code="bad_gateway", status=502, message=f"malformed event from upstream: {exc}"),
                           out)
                break
            self._event(event, out)
        return out

    def finish(self) -> list[Event]:
        if self._done:
            return []
        out: list[Event] = []
        self._fail(ErrorInfo(code="bad_gateway", status=502,
                             message="upstream stream ended before response.completed"), out)
        return out

    # ------------------------------------------------------------ events

    def _event(self, event: _Event, out: list[Event]) -> None:
        seq = event.sequence_number
        if seq is not None:
            if seq <= self._seq:
                self._fail(ErrorInfo(code="bad_gateway", status=502, message=(
                    f"upstream event {event.type} has sequence_number {seq} after {self._seq}")), out)
                return
            self._seq = seq
        kind = event.type
        if kind in ("response.output_text.delta", "response.refusal.delta"):
            self._text(event, out)
        elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            self._thinking(event, "summary" if "summary" in kind else "text", out)
        elif kind == "response.function_call_arguments.delta":
            self._args(event, out, custom=False)
        elif kind == "response.custom_tool_call_input.delta":
            self._args(event, out, custom=True)
        elif kind == "response.output_item.added" and event.item is not None:
            self._start(event.item, event, out)
        elif kind == "response.output_item.done" and event.item is not None:
            self._item_done(event.item, event, out)
        elif kind in ("response.created", "response.in_progress", "response.queued"):
            self._begin(event.response, out)
        elif kind in ("response.completed", "response.incomplete"):
            self._end(event.response, kind == "response.incomplete", out)
        elif kind == "response.failed":
            error = event.response.error if event.response is not None else None
            payload = {"code": error.code, "message": error.message} if error is not None else None
            self._fail(error_from_payload(payload or "upstream response failed"), out)
        elif kind == "error":
            self._fail(error_from_payload({"code": event.code, "message": event.message or ""}), out)
        # content_part / *.done text events, annotations, hosted-tool progress: nothing new

    def _begin(self, response: _Response | None, out: list[Event]) -> None:
        if not self._started:
            self._started = True
            resp = response or _Response()
            out.append(MessageStart(message_id=resp.id or "resp_upstream", model=resp.model or ""))

    def _key(self, event: _Event, item: _Item | None = None) -> str:
        item_id = item.id if item is not None else event.item_id
        return item_id if item_id else f"#{event.output_index}"

    def _start(self, item: _Item, event: _Event, out: list[Event]) -> None:
        self._begin(None, out)
        kind = item.type
        if kind == "reasoning":
            self._open_block(self._key(event, item), "thinking", out)
        elif kind == "message":
            self._open_block(self._key(event, item), "text", out)
        elif kind in ("function_call", "custom_tool_call"):
            custom = kind == "custom_tool_call"
            self._calls += 1
            block = self._open_block(self._key(event, item), "tool_call", out, call_id=item.call_id or "",
                                     name=item.name or "", custom=custom)
            if custom:
                out.append(ToolArgsDelta(index=block.index, fragment=_CUSTOM_HEAD))
            seed = item.input if custom else item.arguments
            if seed:
                block.streamed = True
                out.append(ToolArgsDelta(index=block.index, fragment=_escaped(seed) if custom else seed))

    def _open_block(self, key: str, kind: BlockKind, out: list[Event], *, call_id: str | None = None,
                    name: str | None = None, custom: bool = False) -> _Block:
        self._close(out)
        block = _Block(kind, self._next, custom=custom)
        self._next += 1
        self._open, self._open_key = block, key
        out.append(BlockStart(index=block.index, block=kind, call_id=call_id, name=name))
        return block

    def _close(self, out: list[Event]) -> None:
        block = self._open
        if block is not None:
            if block.custom:
                out.append(ToolArgsDelta(index=block.index, fragment=_CUSTOM_TAIL))
            out.append(BlockStop(index=block.index))
            assert self._open_key is not None
            self._closed.add(self._open_key)
            self._open = self._open_key = None

    def _target(self, event: _Event, kind: BlockKind, out: list[Event]) -> _Block | None:
        """The open block a delta belongs to (a text delta without its item: a new text block)."""
        key = self._key(event)
        block = self._open
        if block is not None and self._open_key == key and block.kind == kind:
            return block
        if key in self._closed or block is not None and block.kind != kind or kind == "tool_call":
            self._fail(ErrorInfo(code="bad_gateway", status=502, message=(
                f"upstream delta for output item {key} which is not the one streaming")), out)
            return None
        self._begin(None, out)
        return self._open_block(key, kind, out)

    def _text(self, event: _Event, out: list[Event]) -> None:
        if not event.delta:
            return
        block = self._target(event, "text", out)
        if block is not None:
            block.streamed = True
            out.append(TextDelta(index=block.index, text=event.delta))

    def _thinking(self, event: _Event, source: str, out: list[Event]) -> None:
        if not event.delta:
            return
        block = self._target(event, "thinking", out)
        if block is None:
            return
        if block.source is None:
            block.source = source
        elif block.source != source:
            return  # a server sending both: the first kind is the reasoning
        text = event.delta
        if source == "summary":
            if block.part is not None and event.summary_index != block.part:
                text = "\n\n" + text
            block.part = event.summary_index
        block.streamed = True
        out.append(ThinkingDelta(index=block.index, text=text))

    def _args(self, event: _Event, out: list[Event], *, custom: bool) -> None:
        if not event.delta:
            return
        block = self._target(event, "tool_call", out)
        if block is not None:
            block.streamed = True
            out.append(ToolArgsDelta(index=block.index, fragment=_escaped(event.delta) if custom else event.delta))

    def _item_done(self, item: _Item, event: _Event, out: list[Event]) -> None:
        key = self._key(event, item)
        block = self._open
        if block is None or self._open_key != key:
            if key in self._closed:
                return
            self._start(item, event, out)  # a server that sends only the finished item
            block = self._open
            if block is None or self._open_key != key:
                return  # an item type without a neutral block (hosted tools)
        if not block.streamed:
            text = _item_text(item, block)
            if text:
                if block.kind == "thinking":
                    out.append(ThinkingDelta(index=block.index, text=text))
                elif block.kind == "text":
                    out.append(TextDelta(index=block.index, text=text))
                else:
                    out.append(ToolArgsDelta(index=block.index, fragment=_escaped(text) if block.custom else text))
        if block.kind == "thinking" and item.encrypted_content:
            out.append(UpstreamSeal(index=block.index, data=seal_data(item.id, item.encrypted_content)))
        self._close(out)

    def _end(self, response: _Response | None, incomplete: bool, out: list[Event]) -> None:
        self._begin(response, out)
        self._close(out)
        self._done = True
        resp = response or _Response()
        if resp.usage is not None:
            u = resp.usage
            out.append(Usage(
                input_tokens=u.input_tokens, output_tokens=u.output_tokens,
                cached_input_tokens=u.input_tokens_details.cached_tokens if u.input_tokens_details else 0,
                reasoning_tokens=u.output_tokens_details.reasoning_tokens if u.output_tokens_details else 0))
        reason: StopReason = "tool_use" if self._calls else "end_turn"
        if incomplete:
            why = resp.incomplete_details.reason if resp.incomplete_details is not None else None
            reason = "refusal" if why == "content_filter" else "max_tokens"
        out.append(MessageStop(stop_reason=reason))

    def _fail(self, info: ErrorInfo, out: list[Event]) -> None:
        self._done = True
        out.append(StreamError(error=info))


def _escaped(text: str) -> str:
    """``text`` as the inside of a JSON string (a fragment of a custom call's ``{"input": ...}``)."""
    return _ENCODER.encode(text).decode()[1:-1]


def _item_text(item: _Item, block: _Block) -> str:
    if block.kind == "thinking":
        raw = [p.text for p in item.content or () if p.type == "reasoning_text"]
        return "".join(raw) if raw else "\n\n".join(p.text for p in item.summary or ())
    if block.kind == "text":
        return "".join(p.text for p in item.content or () if p.type in ("output_text", "refusal"))
    return (item.input if block.custom else item.arguments) or ""


def response_events(payload: Any) -> list[Event]:
    """Events of a whole stream given as decoded JSON events (for tests)."""
    decoder = ResponsesStreamDecoder()
    frames = [SseFrame(event=None, data=_ENCODER.encode(e)) for e in payload]
    return decoder.feed_many(frames) + decoder.finish()


__all__ = ["ResponsesStreamDecoder", "response_events"]
