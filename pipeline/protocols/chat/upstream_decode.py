"""Upstream side: Chat Completions SSE chunks (or one ``chat.completion`` body) → neutral events.

``ChatStreamDecoder`` is the only place block boundaries are inferred from chat deltas. Reasoning,
text and tool-call deltas open sequential blocks; parallel tool calls that interleave by ``index``
are kept whole: the first call streams live, the others are buffered and emitted as whole blocks
when the finish_reason arrives. Usage + MessageStop follow at ``[DONE]`` or end of bytes.
The client's stop strings are matched here (servers strip them): the answer ends at the first.
Facts: ../shared/PROTOCOLS.md §3.2-3.4, §4.6-4.7, §5.5-5.7.
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
    Usage,
)
from pipeline.profiles import Profile
from pipeline.protocols.chat.errors import error_from_payload
from pipeline.protocols.chat.helpers import (
    arguments_text,
    convert_usage,
    new_call_id,
    new_completion_id,
    reasoning_text,
)
from pipeline.protocols.chat.models import (
    ANY_DECODER,
    CHUNK_DECODER,
    CHUNK_REST_DECODER,
    RESPONSE_DECODER,
    DeltaView,
    MessageView,
)
from pipeline.sse import SseFrame

_DONE = b"[DONE]"
_ENDED_EARLY = "upstream stream ended before finish_reason"
# finish_reason values that are failures rather than ends of a turn.
_FAILED: dict[str, ErrorInfo] = {
    "insufficient_system_resource": ErrorInfo(
        code="overloaded",
        message="upstream interrupted generation: insufficient_system_resource",
        status=503,
    ),
    "error": ErrorInfo(code="api_error", message="upstream ended generation with an error", status=500),
    "abort": ErrorInfo(code="api_error", message="upstream aborted generation", status=500),
}


class _Call:
    """One upstream tool call, keyed by its chat ``index``."""

    __slots__ = ("args", "block", "id", "name")

    def __init__(self, call_id: str, name: str) -> None:
        self.id = call_id
        self.name = name
        self.args: list[str] = []
        self.block: int | None = None  # neutral block index once its BlockStart was emitted


class ChatStreamDecoder:
    """Incremental: ``feed(frame) -> events`` per SSE frame, ``finish() -> events`` at end of bytes.

    Args:
        profile: the upstream's quirks (which reasoning field comes first).
        stop: the request's stop strings. Chat servers strip a matched stop and say only
            ``stop``, so the gateway matches them itself (the upstream is not sent them): the
            text is cut before the first match, ``MessageStop`` names it, and the decoder is
            ``done`` at once (the upstream is closed, its usage never arrives). Text that could
            begin a stop string is held back until the next delta settles it.
    """

    def __init__(self, profile: Profile, *, stop: tuple[str, ...] = ()) -> None:
        self._reasoning_first = profile.reasoning_field == "reasoning"
        self._stop = tuple(s for s in stop if s)
        self._tail_len = max((len(s) for s in self._stop), default=0)
        self._held = ""  # text that may begin a stop string
        self._matched: str | None = None
        self._started = False
        self._done = False
        self._next = 0
        self._open: BlockKind | None = None
        self._open_index = -1
        self._calls: dict[int, _Call] = {}
        self._live: _Call | None = None
        self._ids: set[str] = set()
        self._upstream_ids: dict[str, int] = {}
        self._last_call: int | None = None
        self._late_reasoning: list[str] = []
        self._late_text: list[str] = []
        self._finish: str | None = None
        self._usage: Usage | None = None

    @property
    def done(self) -> bool:
        """No more events will come: the rest of the upstream's bytes need not be read."""
        return self._done

    def feed(self, frame: SseFrame) -> list[Event]:
        if self._done:
            return []
        data = frame.data
        if not data:
            return []
        if data[:1] == b"[" and data.strip() == _DONE:
            return self._end([])
        if frame.event == "error":
            return self._fail(_error_frame(data), [])
        try:
            chunk = (CHUNK_REST_DECODER if self._started else CHUNK_DECODER).decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return self._fail(_malformed(exc), [])
        return self._chunk(chunk)

    def _chunk(self, chunk: Any) -> list[Event]:
        """The events of one decoded chunk."""
        if chunk.error:
            return self._fail(error_from_payload(chunk.error), [])
        out: list[Event] = []
        if not self._started:
            self._start(chunk.id, chunk.model, out)
        if chunk.choices:
            for choice in chunk.choices:
                if choice.index != 0 or self._finish is not None:
                    continue  # n > 1 is never requested; nothing counts after finish_reason
                if choice.delta is not None:
                    self._delta(choice.delta, out)
                    if self._done:
                        return out
                if choice.finish_reason:
                    self._on_finish(choice.finish_reason, out)
                    if self._done:
                        return out
        if chunk.usage is not None:
            self._usage = convert_usage(chunk.usage)
        return out

    def feed_many(self, frames: list[SseFrame]) -> list[Event]:
        """``feed`` for all the frames of one read, as one list. The common chunk (one choice
        continuing the open text or thinking block, nothing else) is handled inline."""
        out: list[Event] = []
        feed, decode = self.feed, CHUNK_REST_DECODER.decode
        for frame in frames:
            open_kind = self._open
            data = frame.data
            if (open_kind is None or frame.event is not None or data[:1] != b"{" or self._calls or self._tail_len
                    or self._finish is not None or self._done):
                out += feed(frame)
                continue
            try:
                chunk = decode(data)
            except (msgspec.DecodeError, msgspec.ValidationError):
                out += feed(frame)  # reports it
                continue
            choices = chunk.choices
            if chunk.error is None and chunk.usage is None and choices and len(choices) == 1:
                choice = choices[0]
                delta = choice.delta
                if (choice.index == 0 and choice.finish_reason is None and delta is not None
                        and delta.reasoning is None and delta.refusal is None and delta.tool_calls is None
                        and delta.function_call is None):
                    if open_kind == "text" and delta.content and delta.reasoning_content is None:
                        out.append(TextDelta(index=self._open_index, text=delta.content))
                        continue
                    if open_kind == "thinking" and delta.reasoning_content and not delta.content:
                        out.append(ThinkingDelta(index=self._open_index, text=delta.reasoning_content))
                        continue
            out += self._chunk(chunk)
        return out

    def finish(self) -> list[Event]:
        """End of the byte stream: Usage + MessageStop if a finish_reason came, else an error."""
        if self._done:
            return []
        return self._end([])

    def response(self, body: bytes) -> list[Event]:
        """All events for a non-streaming ``chat.completion`` body."""
        try:
            resp = RESPONSE_DECODER.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return self._fail(_malformed(exc), [])
        if resp.error:
            return self._fail(error_from_payload(resp.error), [])
        choices = [c for c in resp.choices or () if c.index == 0]
        if not choices:
            return self._fail(
                ErrorInfo(code="bad_gateway", message="upstream response has no choices", status=502), []
            )
        out: list[Event] = []
        self._start(resp.id, resp.model, out)
        choice = choices[0]
        if choice.message is not None:
            self._message(choice.message, out)
        if self._done:
            return out
        self._on_finish(choice.finish_reason or "stop", out)
        if self._done:
            return out
        if resp.usage is not None:
            self._usage = convert_usage(resp.usage)
        return self._end(out)

    def _start(self, message_id: str | None, model: str | None, out: list[Event]) -> None:
        self._started = True
        out.append(MessageStart(message_id=message_id or new_completion_id(), model=model or ""))

    def _reasoning(self, reasoning_content: str | None, reasoning: object) -> str | None:
        """The reasoning text, preferring the profile's field when a server sends both."""
        if reasoning is None:
            return reasoning_content
        if self._reasoning_first:
            return reasoning_text(reasoning) or reasoning_content
        return reasoning_content or reasoning_text(reasoning)

    def _delta(self, delta: DeltaView, out: list[Event]) -> None:
        reasoning = self._reasoning(delta.reasoning_content, delta.reasoning)
        if reasoning:
            self._thinking(reasoning, out)
        if delta.content:
            self._text(delta.content, out)
            if self._done:
                return
        if delta.refusal:
            self._text(delta.refusal, out)
        if delta.tool_calls:
            for pos, call in enumerate(delta.tool_calls):
                fn = call.function
                self._tool(
                    call.index,
                    pos,
                    call.id,
                    fn.name if fn is not None else None,
                    arguments_text(fn.arguments) if fn is not None else "",
                    out,
                )
        if delta.function_call is not None:  # legacy single function call
            fc = delta.function_call
            self._tool(0, 0, None, fc.name, arguments_text(fc.arguments), out)

    def _message(self, message: MessageView, out: list[Event]) -> None:
        reasoning = self._reasoning(message.reasoning_content, message.reasoning)
        if reasoning:
            self._thinking(reasoning, out)
        content = message.content
        if isinstance(content, list):  # some servers answer with content parts
            content = "".join(
                p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
            )
        if isinstance(content, str) and content:
            self._text(content, out)
            if self._done:
                return
        if message.refusal:
            self._text(message.refusal, out)
        for pos, call in enumerate(message.tool_calls or ()):
            fn = call.function
            name = fn.name if fn is not None else None
            args = arguments_text(fn.arguments) if fn is not None else ""
            self._tool(pos, pos, call.id, name, args, out)
        if message.function_call is not None:
            fc = message.function_call
            self._tool(0, 0, None, fc.name, arguments_text(fc.arguments), out)

    def _thinking(self, text: str, out: list[Event]) -> None:
        self._flush(out)
        if self._calls:  # after a tool call started: keep tool blocks whole, emit at the end
            self._late_reasoning.append(text)
            return
        if self._open != "thinking":
            self._open_block("thinking", out)
        out.append(ThinkingDelta(index=self._open_index, text=text))

    def _text(self, text: str, out: list[Event]) -> None:
        if self._tail_len and not self._calls:
            text = self._match(self._held + text, out)
            if not text:
                return
        if self._calls:
            self._late_text.append(text)
            return
        if self._open != "text":
            self._open_block("text", out)
        out.append(TextDelta(index=self._open_index, text=text))

    def _match(self, text: str, out: list[Event]) -> str:
        """The part of ``text`` to emit now; at a stop string's match the answer ends here."""
        found = [(text.find(stop), stop) for stop in self._stop if stop in text]
        if found:
            at, stop = min(found)
            self._held = ""
            if at:
                self._text_out(text[:at], out)
            self._matched = stop
            self._finish = "stop"
            self._close_block(out)
            self._end(out)
            return ""
        keep = max((n for stop in self._stop for n in range(1, min(len(stop), len(text) + 1))
                    if text.endswith(stop[:n])), default=0)
        self._held = text[len(text) - keep:] if keep else ""
        return text[: len(text) - keep]

    def _text_out(self, text: str, out: list[Event]) -> None:
        if self._open != "text":
            self._open_block("text", out)
        out.append(TextDelta(index=self._open_index, text=text))

    def _flush(self, out: list[Event]) -> None:
        """Text held back as a possible stop prefix was not one."""
        if self._held:
            held, self._held = self._held, ""
            self._text_out(held, out)

    def _tool(
        self,
        index: int | None,
        pos: int,
        upstream_id: str | None,
        name: str | None,
        args: str,
        out: list[Event],
    ) -> None:
        self._flush(out)
        if index is None:
            index = self._guess_index(pos, upstream_id)
        self._last_call = index
        call = self._calls.get(index)
        if call is None:
            call_id = upstream_id if upstream_id and upstream_id not in self._ids else new_call_id()
            self._ids.add(call_id)
            if upstream_id:
                self._upstream_ids.setdefault(upstream_id, index)
            call = _Call(call_id, name or "")
            self._calls[index] = call
            if self._live is None:
                self._live = call
        elif name and not call.name:
            call.name = name
        if call is not self._live:
            if args:
                call.args.append(args)
            return
        if call.block is None:
            if not call.name:  # wait for the name before opening the block
                if args:
                    call.args.append(args)
                return
            self._open_block("tool_call", out, call.id, call.name)
            call.block = self._open_index
            if call.args:
                out.append(ToolArgsDelta(index=call.block, fragment="".join(call.args)))
                call.args = []
        if args:
            out.append(ToolArgsDelta(index=call.block, fragment=args))

    def _guess_index(self, pos: int, upstream_id: str | None) -> int:
        """A chat index for a fragment that has none (non-conforming servers)."""
        if upstream_id is not None and upstream_id in self._upstream_ids:
            return self._upstream_ids[upstream_id]
        if upstream_id or self._last_call is None:
            return max(self._calls) + 1 if self._calls else pos
        return self._last_call

    def _open_block(
        self, kind: BlockKind, out: list[Event], call_id: str | None = None, name: str | None = None
    ) -> None:
        self._close_block(out)
        self._open = kind
        self._open_index = self._next
        self._next += 1
        out.append(BlockStart(index=self._open_index, block=kind, call_id=call_id, name=name))

    def _close_block(self, out: list[Event]) -> None:
        if self._open is not None:
            out.append(BlockStop(index=self._open_index))
            self._open = None

    def _on_finish(self, reason: str, out: list[Event]) -> None:
        failure = _FAILED.get(reason)
        if failure is not None:
            self._fail(failure, out)
            return
        self._finish = reason
        self._flush(out)
        live = self._live
        if live is not None and live.block is None:
            self._open_block("tool_call", out, live.id, live.name)
            live.block = self._open_index
            if live.args:
                out.append(ToolArgsDelta(index=live.block, fragment="".join(live.args)))
        for index in sorted(self._calls):
            call = self._calls[index]
            if call is live:
                continue
            self._open_block("tool_call", out, call.id, call.name)
            call.block = self._open_index
            if call.args:
                out.append(ToolArgsDelta(index=call.block, fragment="".join(call.args)))
        if self._late_reasoning:
            self._open_block("thinking", out)
            out.append(ThinkingDelta(index=self._open_index, text="".join(self._late_reasoning)))
        if self._late_text:
            self._open_block("text", out)
            out.append(TextDelta(index=self._open_index, text="".join(self._late_text)))
        self._close_block(out)

    def _stop_reason(self) -> tuple[StopReason, str | None]:
        reason = self._finish
        if reason == "length":
            return "max_tokens", None
        if reason == "content_filter":
            return "refusal", None
        if self._calls:  # tool_calls, function_call, or stop with calls present (some servers)
            return "tool_use", None
        if self._matched is not None:
            return "stop_sequence", self._matched
        return "end_turn", None

    def _end(self, out: list[Event]) -> list[Event]:
        self._done = True
        if self._finish is None:
            out.append(StreamError(error=ErrorInfo(code="bad_gateway", message=_ENDED_EARLY, status=502)))
            return out
        if self._usage is not None:
            out.append(self._usage)
        reason, sequence = self._stop_reason()
        out.append(MessageStop(stop_reason=reason, stop_sequence=sequence))
        return out

    def _fail(self, info: ErrorInfo, out: list[Event]) -> list[Event]:
        self._done = True
        out.append(StreamError(error=info))
        return out


def decode_response(body: bytes, profile: Profile, stop: tuple[str, ...] = ()) -> list[Event]:
    """Events for a non-streaming ``chat.completion`` body (the same a stream would give)."""
    return ChatStreamDecoder(profile, stop=stop).response(body)


def _malformed(exc: Exception) -> ErrorInfo:
    return ErrorInfo(code="bad_gateway", message=f"malformed chunk from upstream: {exc}", status=502)


def _error_frame(data: bytes) -> ErrorInfo:
    """An ``event: error`` frame: JSON (``{"error": ...}`` or the error itself) or plain text."""
    try:
        payload: Any = ANY_DECODER.decode(data)
    except msgspec.DecodeError:
        payload = data.decode("utf-8", "replace")
    if isinstance(payload, dict) and "error" in payload:
        payload = payload["error"]
    return error_from_payload(payload)


__all__ = ["ChatStreamDecoder", "decode_response"]
