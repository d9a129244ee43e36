"""The Responses output state machine shared by the SSE encoder and the collector (§5.4).

Blocks map to output items in order: thinking → reasoning (summary + ``encrypted_content``, the
signature: ``thinking_filter``'s envelope, encrypted for the upstream that reasoned; unless the
client asked for a ``reasoning.summary`` (``auto``, ``concise``, ``detailed``) the item has no
summary and no summary events, its ``encrypted_content`` all the same), text → message, tool_call → function_call /
custom_tool_call / local_shell_call / tool_search_call by the offered tool's kind; a search the
gateway runs (``BlockStart.server``) → web_search_call, in progress from its call, searching when
the query is whole, completed (or failed) with its ``SearchResult``. ``_emit`` is the only
output: the encoder frames it, the collector ignores it.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import msgspec
from msgspec.structs import replace

from pipeline.events import (
    BlockStart,
    BlockStop,
    ErrorInfo,
    Event,
    Heartbeat,
    MessageStart,
    MessageStop,
    SearchResult,
    SignatureDelta,
    StreamError,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
    Usage,
)
from pipeline.model import ChatRequest
from pipeline.protocols.responses import client_encode_items as items
from pipeline.protocols.responses import output_models as w
from pipeline.protocols.responses.client_decode_echo import NO_ECHO, ResponsesEcho
from pipeline.protocols.responses.client_encode_args import InputStreamer
from pipeline.protocols.responses.errors import failure

END_OF_STREAM = "the upstream stream ended before the response was complete"


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


class _Block:
    """The open block: its announced item (``None`` for local_shell until it ends) and text."""

    __slots__ = ("index", "item", "kind", "parts", "signature", "streamer", "summary_open", "templates", "tool")

    def __init__(self, kind: str, index: int, item: Any, tool: items.ToolTarget | None = None) -> None:
        self.kind = kind  # thinking | text | function | custom | local_shell | tool_search
        self.index = index
        self.item = item
        self.tool = tool
        self.parts: list[str] = []
        self.signature: str | None = None
        self.summary_open = False
        self.templates: dict[type[Any], tuple[bytes, bytes, bytes]] = {}  # the stream encoder's, per event type
        self.streamer: InputStreamer | None = InputStreamer() if kind == "custom" else None


def delta_event(cls: type[Any], item_id: str, output_index: int, text: str) -> Any:
    """A per-token delta event Struct (``sequence_number`` still 0)."""
    if cls is w.ResponseTextDeltaEvent:
        return cls(sequence_number=0, item_id=item_id, output_index=output_index, content_index=0, delta=text)
    if cls is w.ResponseReasoningSummaryTextDeltaEvent:
        return cls(sequence_number=0, item_id=item_id, output_index=output_index, summary_index=0, delta=text)
    return cls(sequence_number=0, item_id=item_id, output_index=output_index, delta=text)


class _Held:
    """A finished tool call whose done events wait for the next event. ``whole``: its
    arguments are complete JSON, so a ``max_tokens`` stop right after it did not cut it."""

    __slots__ = ("events", "final", "index", "whole")

    def __init__(self, index: int, final: Any, events: list[Any], whole: bool) -> None:
        self.index = index
        self.final = final
        self.events = events
        self.whole = whole


class ResponseCore:
    """Folds neutral events into Responses output; subclasses decide what ``_emit`` does.

    Namespaced tools get their client name back plus ``namespace``. A tool call's closing
    events are held until the next event shows ``max_tokens`` did not cut it: Codex runs every
    call whose ``output_item.done`` it sees (§2.6), so a truncated call never gets one.

    Args:
        request: the request as the stages shaped it (its model, the client's name, and limits
            are echoed on the Response).
        echo: what the decoder saw (``ResponsesEcho``: the tools as the client knows them, the
            ``tool_choice`` and ``metadata`` to echo).
        prompt_estimate: not used: a Response reports input tokens with the upstream's usage only.
    """

    def __init__(self, request: ChatRequest, echo: ResponsesEcho = NO_ECHO, *, prompt_estimate: int | None = None,
                 response_id: str | None = None, created_at: int | None = None) -> None:
        self._request = request
        self._echo = echo
        self.response_id = response_id or new_id("resp_")
        self._created_at = int(time.time()) if created_at is None else created_at
        self._parallel = True if request.parallel_tool_calls is None else request.parallel_tool_calls
        self._show_reasoning = echo.reasoning_summary not in (None, "none")
        self._tool_choice = items.tool_choice(request, echo)
        self._metadata: dict[str, Any] | msgspec.UnsetType = dict(echo.metadata) if echo.metadata else msgspec.UNSET
        self._output: dict[int, Any] = {}
        self._count = 0  # output_index of the next block
        self._block: _Block | None = None
        self._held: _Held | None = None
        self._last_kind: str | None = None
        self._usage: Usage | None = None
        self._searches: dict[str, tuple[int, w.ResponseWebSearchCall]] = {}  # call id → (index, item)
        self.started = False
        self.finished = False
        self.status = "in_progress"
        self.final: w.ResponseObject | None = None

    def _emit(self, event: Any) -> None:
        """Receives each wire event Struct in order (``sequence_number`` still 0)."""

    def handle(self, event: Event) -> None:
        if self.finished:
            return
        if isinstance(event, (TextDelta, ThinkingDelta, ToolArgsDelta)):
            self._delta(event)
        elif isinstance(event, BlockStart):
            self._start()
            self._release()
            if self._block is not None:
                self._close()
            self._open(event)
        elif isinstance(event, BlockStop):
            if self._block is not None:
                self._close()
        elif isinstance(event, SignatureDelta):
            block = self._block
            if block is not None and block.kind == "thinking":
                block.signature = (block.signature or "") + event.signature
        elif isinstance(event, SearchResult):
            self._searched(event)
        elif isinstance(event, Usage):
            self._usage = event
        elif isinstance(event, MessageStop):
            self._stop(event)
        elif isinstance(event, StreamError):
            self.fail(event.error)
        elif isinstance(event, MessageStart):
            self._start()
        elif isinstance(event, Heartbeat):
            if self.started:  # a real event: Codex's idle timer ignores SSE comments
                self._emit(w.ResponseInProgressEvent(sequence_number=0, response=self.response(output=[])))
            else:
                self._start()

    def fail(self, info: ErrorInfo) -> None:
        """End with ``error`` + ``response.failed``; open or held items end ``incomplete``."""
        if self.finished:
            return
        self._start()
        code, message = failure(info)
        self._abandon()
        self._emit(w.ResponseErrorEvent(sequence_number=0, code=code, message=message))
        self._finish("failed", error=w.ResponseError(code=code, message=message))

    def end(self) -> None:
        """The event stream is over; without a terminal event that is a failure."""
        if not self.finished:
            self.fail(ErrorInfo(code="api_error", message=END_OF_STREAM))

    def _start(self) -> None:
        if not self.started:
            self.started = True
            self._emit(w.ResponseCreatedEvent(sequence_number=0, response=self.response(output=[])))
            self._emit(w.ResponseInProgressEvent(sequence_number=0, response=self.response(output=[])))

    def response(self, *, output: list[Any] | None = None, error: w.ResponseError | None = None,
                 incomplete: str | None = None) -> w.ResponseObject:
        """The Response object now; ``output`` defaults to every item so far, in order."""
        request = self._request
        done = self.status != "in_progress"
        return w.ResponseObject(
            id=self.response_id,
            created_at=self._created_at,
            status=self.status,
            model=request.model,
            output=[self._output[i] for i in sorted(self._output)] if output is None else output,
            parallel_tool_calls=self._parallel,
            tool_choice=self._tool_choice,
            error=error,
            incomplete_details=w.IncompleteDetails(reason=incomplete) if incomplete else None,
            usage=items.usage(self._usage) if done and self._usage is not None else None,
            completed_at=int(time.time()) if self.status == "completed" else msgspec.UNSET,
            max_output_tokens=self._echo.max_output_tokens,  # the client's, not the budget sent upstream
            temperature=items.opt(request.temperature),
            top_p=items.opt(request.top_p),
            metadata=self._metadata,
            previous_response_id=self._echo.previous_response_id or msgspec.UNSET,
        )

    def _stop(self, event: MessageStop) -> None:
        self._start()
        if self._block is not None:
            self._close()
        reason = event.stop_reason
        if reason == "max_tokens":
            # A cut answer is ``incomplete`` / ``max_output_tokens``, as the SDK models it (issue
            # 17); its text stays in the output. A tool call whose arguments were whole when the
            # budget ran out was not cut: it is released and the Response is completed.
            held = self._held
            if held is not None and held.whole:
                self._release()
                self._finish("completed")
            elif held is None and self._last_kind == "text":
                self._finish("incomplete", incomplete="max_output_tokens")
            else:
                self._abandon()
                self._finish("incomplete", incomplete="max_output_tokens")
            return
        self._release()
        if reason == "refusal":
            self._finish("incomplete", incomplete="content_filter")
        else:
            self._finish("completed")

    def _finish(self, status: str, *, error: w.ResponseError | None = None, incomplete: str | None = None) -> None:
        self.status = status
        self.finished = True
        response = self.final = self.response(error=error, incomplete=incomplete)
        if status == "completed":
            self._emit(w.ResponseCompletedEvent(sequence_number=0, response=response))
        elif status == "incomplete":
            self._emit(w.ResponseIncompleteEvent(sequence_number=0, response=response))
        else:
            self._emit(w.ResponseFailedEvent(sequence_number=0, response=response))

    def _open(self, event: BlockStart) -> None:
        index = self._count
        self._count += 1
        if event.block == "thinking":
            block = _Block("thinking", index, w.ResponseReasoningItem(
                id=new_id("rs_"), summary=[], encrypted_content=None, status="in_progress"))
        elif event.block == "text":
            block = _Block("text", index, w.ResponseOutputMessage(
                id=new_id("msg_"), role="assistant", status="in_progress", content=[]))
        elif event.server:
            block = _Block("web_search", index, items.web_search_item(event.call_id or new_id("call_")))
        else:
            tool = items.target(self._request, self._echo, event.name, event.call_id or new_id("call_"))
            if tool.kind in ("local_shell", "tool_search"):  # announced at BlockStop: it needs all arguments
                block = _Block(tool.kind, index, None, tool)
            elif tool.kind == "custom":
                block = _Block("custom", index, items.custom_item(new_id("ctc_"), tool, "", "in_progress"), tool)
            else:
                block = _Block("function", index, items.function_item(new_id("fc_"), tool, "", "in_progress"), tool)
        self._block = block
        self._last_kind = block.kind
        if block.item is None:
            return
        self._output[index] = block.item
        self._emit(w.ResponseOutputItemAddedEvent(sequence_number=0, output_index=index, item=block.item))
        if block.kind == "text":
            self._emit(w.ResponseContentPartAddedEvent(
                sequence_number=0, item_id=block.item.id, output_index=index, content_index=0,
                part=w.OutputText(text="")))
        elif block.kind == "web_search":
            self._emit(w.ResponseWebSearchCallInProgressEvent(sequence_number=0, item_id=block.item.id,
                                                              output_index=index))

    def _delta(self, event: TextDelta | ThinkingDelta | ToolArgsDelta) -> None:
        block = self._block
        text = event.fragment if isinstance(event, ToolArgsDelta) else event.text
        if block is None or not text:
            return
        kind = block.kind
        if isinstance(event, TextDelta):
            if kind == "text":
                block.parts.append(text)
                self._emit_delta(w.ResponseTextDeltaEvent, block, text)
        elif isinstance(event, ThinkingDelta):
            if kind == "thinking" and self._show_reasoning:
                block.parts.append(text)
                if not block.summary_open:
                    block.summary_open = True
                    self._emit(w.ResponseReasoningSummaryPartAddedEvent(
                        sequence_number=0, item_id=block.item.id, output_index=block.index, summary_index=0,
                        part=w.SummaryText(text="")))
                self._emit_delta(w.ResponseReasoningSummaryTextDeltaEvent, block, text)
        elif kind == "web_search":
            block.parts.append(text)
        elif block.tool is not None:
            block.parts.append(text)
            if kind == "function":
                self._emit_delta(w.ResponseFunctionCallArgumentsDeltaEvent, block, text)
            elif block.streamer is not None:
                shown = block.streamer.feed(text)
                if shown:
                    self._emit(w.ResponseCustomToolCallInputDeltaEvent(
                        sequence_number=0, item_id=block.item.id, output_index=block.index, delta=shown))

    def _emit_delta(self, cls: type[Any], block: _Block, text: str) -> None:
        """One per-token delta event (text, reasoning summary or function arguments) of ``block``;
        the stream encoder writes these from byte templates instead."""
        self._emit(delta_event(cls, block.item.id, block.index, text))

    def _close(self) -> None:
        block = self._block
        assert block is not None
        self._block = None
        index, text = block.index, "".join(block.parts)
        if block.kind == "thinking":
            item_id = block.item.id
            summary = [w.SummaryText(text=text)] if block.summary_open else []
            if block.summary_open:
                self._emit(w.ResponseReasoningSummaryTextDoneEvent(
                    sequence_number=0, item_id=item_id, output_index=index, summary_index=0, text=text))
                self._emit(w.ResponseReasoningSummaryPartDoneEvent(
                    sequence_number=0, item_id=item_id, output_index=index, summary_index=0, part=summary[0]))
            self._done(index, replace(block.item, summary=summary, encrypted_content=block.signature,
                                      status="completed"))
        elif block.kind == "text":
            item_id = block.item.id
            part = w.OutputText(text=text)
            self._emit(w.ResponseTextDoneEvent(
                sequence_number=0, item_id=item_id, output_index=index, content_index=0, text=text))
            self._emit(w.ResponseContentPartDoneEvent(
                sequence_number=0, item_id=item_id, output_index=index, content_index=0, part=part))
            self._done(index, replace(block.item, content=[part], status="completed"))
        elif block.kind == "web_search":
            item = replace(block.item, status="searching", action=items.web_search_action(text))
            self._output[index] = item
            self._searches[items.web_search_call_id(item)] = (index, item)
            self._emit(w.ResponseWebSearchCallSearchingEvent(sequence_number=0, item_id=item.id, output_index=index))
        else:
            self._held = self._closing(block, text)

    def _searched(self, result: SearchResult) -> None:
        """The search of a web_search_call ran: the item is completed (failed: the model was told)."""
        found = self._searches.pop(result.call_id, None)
        if found is None:
            return
        index, item = found
        final = items.searched_web_item(item, result)
        if final.status == "completed":
            self._emit(w.ResponseWebSearchCallCompletedEvent(sequence_number=0, item_id=item.id, output_index=index))
        self._done(index, final)

    def _closing(self, block: _Block, arguments: str) -> _Held:
        """A finished tool call: its final item and the events that announce it done (held)."""
        index, tool = block.index, block.tool
        assert tool is not None
        if block.kind == "custom":
            assert block.streamer is not None
            value, rest = block.streamer.finish()
            if rest:
                self._emit(w.ResponseCustomToolCallInputDeltaEvent(
                    sequence_number=0, item_id=block.item.id, output_index=index, delta=rest))
            final = replace(block.item, input=value, status="completed")
            done = w.ResponseCustomToolCallInputDoneEvent(
                sequence_number=0, item_id=final.id, output_index=index, input=value)
            return _Held(index, final, [done, self._item_done(index, final)], items.is_json(arguments))
        if block.kind == "function":
            final = replace(block.item, arguments=arguments, status="completed")
            args_done = w.ResponseFunctionCallArgumentsDoneEvent(
                sequence_number=0, item_id=final.id, output_index=index, name=final.name, arguments=arguments)
            return _Held(index, final, [args_done, self._item_done(index, final)], items.is_json(arguments))
        if block.kind == "tool_search":
            found = items.search_item(new_id("tsc_"), tool, arguments, "completed")
            return _Held(index, found, [self._item_added(index, replace(found, status="in_progress")),
                                        self._item_done(index, found)], items.is_json(arguments))
        action = items.shell_action(arguments)
        if action is not None:
            shell = w.ResponseLocalShellCall(id=new_id("lsh_"), call_id=tool.call_id, status="completed",
                                             action=action)
            shell_added = replace(shell, status="in_progress")
            return _Held(index, shell, [self._item_added(index, shell_added), self._item_done(index, shell)], True)
        # Arguments that do not fit an exec action: shown as a function call, never dropped.
        final = items.function_item(new_id("fc_"), tool, arguments, "completed")
        added = replace(final, arguments="", status="in_progress")
        args_done = w.ResponseFunctionCallArgumentsDoneEvent(
            sequence_number=0, item_id=final.id, output_index=index, name=final.name, arguments=arguments)
        events = [self._item_added(index, added), args_done, self._item_done(index, final)]
        return _Held(index, final, events, items.is_json(arguments))

    @staticmethod
    def _item_added(index: int, item: Any) -> w.ResponseOutputItemAddedEvent:
        return w.ResponseOutputItemAddedEvent(sequence_number=0, output_index=index, item=item)

    @staticmethod
    def _item_done(index: int, item: Any) -> w.ResponseOutputItemDoneEvent:
        return w.ResponseOutputItemDoneEvent(sequence_number=0, output_index=index, item=item)

    def _done(self, index: int, item: Any) -> None:
        self._output[index] = item
        self._emit(self._item_done(index, item))

    def _release(self) -> None:
        """The held tool call was not cut: announce it done."""
        held = self._held
        if held is not None:
            self._held = None
            self._output[held.index] = held.final
            for event in held.events:
                self._emit(event)

    def _abandon(self) -> None:
        """The response ends early: open and held items stay in the output as ``incomplete``."""
        held, block = self._held, self._block
        self._held = self._block = None
        for index, item in self._searches.values():
            self._output[index] = replace(item, status="incomplete")
        self._searches.clear()
        if held is not None:
            self._output[held.index] = replace(held.final, status="incomplete")
        if block is None or block.item is None:
            return
        text = "".join(block.parts)
        item = block.item
        if block.kind == "thinking":
            summary = [w.SummaryText(text=text)] if text else []
            item = replace(item, summary=summary, encrypted_content=block.signature, status="incomplete")
        elif block.kind == "text":
            item = replace(item, content=[w.OutputText(text=text)], status="incomplete")
        elif block.kind == "function":
            item = replace(item, arguments=text, status="incomplete")
        elif block.streamer is not None:
            item = replace(item, input=block.streamer.streamed, status="incomplete")
        self._output[block.index] = item


__all__ = ["END_OF_STREAM", "ResponseCore", "delta_event", "new_id"]
