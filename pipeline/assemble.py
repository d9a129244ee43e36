"""One fold of the neutral events into a whole answer, for every non-streaming client.

``Assembler.feed(event)`` for each event, then ``completion()``: a frozen ``Completion`` (ordered
blocks, usage, stop, the message's id and model, the error). Each client codec renders that in its
dialect; none folds events itself, so the dialects agree on what the answer *is* and differ only in
how they write it. The rules, decided here once (each has a test in ``tests/test_assemble.py``):

1. Blocks are in the order they began (a ``BlockStart``, or the delta that opened one), the order
   a stream encoder emits them in; a neutral ``index`` only says which block a delta belongs to.
2. A delta joins the newest block of its index *and its kind* (text, thinking, tool_call; a
   ``SignatureDelta`` is thinking's), open or closed: content after its block's ``BlockStop``
   stays in that block (a stage may release held content late). A delta with no such block (an
   unknown index, or the index of a block of another kind) opens one of its own kind there,
   without call id or name. Nothing is silently dropped; an empty delta opens nothing.
3. A ``BlockStart`` always opens a new block, also on an index used before (the earlier block
   keeps its content); the index's later deltas join the new one.
4. Text, thinking, tool arguments and a thinking block's signature are the concatenation of their
   deltas (one envelope normally, in pieces allowed).
5. The first ``MessageStart`` names the message (id, upstream model); a later one changes nothing.
   ``Usage`` and ``MessageStop`` sum up what came before them: the last one stands.
6. Content after ``MessageStop`` is kept (a stage's ``on_end`` flushes after it).
7. The first ``StreamError`` is the answer's error: it is the cause, later ones its consequences.
   The fold ends there: what follows (content, another error, a ``MessageStop``) is ignored, so
   nothing after a failure turns it into a success. A non-streaming client has nothing yet, so a
   completion with an error is that error for it, in its dialect (``FoldCollector.body`` raises
   it), never a partial body; ``blocks`` keeps what came before it.
8. Input that ends without ``MessageStop`` or ``StreamError`` is an error too (``INCOMPLETE``,
   ``bad_gateway``): a missing end is never rendered as a normal stop.
9. ``Heartbeat`` (and any event kind this module does not know) is ignored.

``replay(completion)`` is the inverse: the well-formed stream, one delta per block, that folds
back into the same completion (Responses renders through its stream's state machine with it).
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from pipeline.events import (
    BlockKind,
    BlockStart,
    BlockStop,
    ErrorInfo,
    Event,
    MessageStart,
    MessageStop,
    SearchResult,
    SignatureDelta,
    StopReason,
    StreamError,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
    Usage,
)

INCOMPLETE = ErrorInfo(code="bad_gateway", message="the answer ended before the message was complete", status=502)


class Text(msgspec.Struct, frozen=True, tag_field="kind", tag="text"):
    text: str


class Thinking(msgspec.Struct, frozen=True, tag_field="kind", tag="thinking"):
    text: str
    signature: str | None = None
    """The block's opaque signature (``thinking_filter``'s envelope), ``None`` if it had none."""
    redacted: bool = False
    """Its ``BlockStart`` said ``redacted`` (the signature is the block's data)."""


class ToolCall(msgspec.Struct, frozen=True, tag_field="kind", tag="tool_call"):
    call_id: str | None
    name: str | None
    arguments: str
    """The argument fragments joined (JSON text as the upstream wrote it, possibly cut)."""
    server: bool = False
    """A call the gateway ran itself (``BlockStart.server``)."""


class Search(msgspec.Struct, frozen=True, tag_field="kind", tag="search"):
    """A web search's result (the ``SearchResult`` event, whole)."""

    result: SearchResult


Block = Text | Thinking | ToolCall | Search


class Completion(msgspec.Struct, frozen=True, kw_only=True):
    """A whole answer. ``error`` set: the answer failed (``blocks`` is what came before)."""

    message_id: str = ""
    model: str = ""
    blocks: tuple[Block, ...] = ()
    usage: Usage | None = None
    stop_reason: StopReason | None = None
    stop_sequence: str | None = None
    error: ErrorInfo | None = None


class _Building:
    """A block being folded: its kind, its parts so far, and for a thinking block the signature's."""

    __slots__ = ("call_id", "kind", "name", "parts", "redacted", "server", "signature")

    def __init__(self, kind: BlockKind, call_id: str | None, name: str | None, redacted: bool = False,
                 server: bool = False) -> None:
        self.kind = kind
        self.server = server
        self.call_id = call_id
        self.name = name
        self.parts: list[str] = []
        self.signature: list[str] | None = None
        self.redacted = redacted

    def build(self) -> Block:
        text = "".join(self.parts)
        if self.kind == "text":
            return Text(text=text)
        if self.kind == "thinking":
            return Thinking(text=text, signature=None if self.signature is None else "".join(self.signature),
                            redacted=self.redacted)
        return ToolCall(call_id=self.call_id, name=self.name, arguments=text, server=self.server)


class Assembler:
    """The fold: ``feed(event)`` in stream order, ``completion()`` at the end (any number of times)."""

    __slots__ = ("_blocks", "_error", "_id", "_model", "_named", "_newest", "_stop", "_usage")

    def __init__(self) -> None:
        self._blocks: list[_Building | Search] = []
        self._newest: dict[tuple[int, BlockKind], _Building] = {}  # (index, kind) → its newest block
        self._named = False
        self._id = ""
        self._model = ""
        self._usage: Usage | None = None
        self._stop: MessageStop | None = None
        self._error: ErrorInfo | None = None

    def feed(self, event: Event) -> None:
        if self._error is not None:  # rule 7: the answer ended at its first error
            return
        if isinstance(event, TextDelta):  # the per-token events first
            self._add(event.index, "text", event.text)
        elif isinstance(event, ToolArgsDelta):
            self._add(event.index, "tool_call", event.fragment)
        elif isinstance(event, ThinkingDelta):
            self._add(event.index, "thinking", event.text)
        elif isinstance(event, BlockStart):
            self._begin(event.index, event.block, event.call_id, event.name, event.redacted, event.server)
        elif isinstance(event, SearchResult):
            self._blocks.append(Search(result=event))
        elif isinstance(event, SignatureDelta):
            if event.signature:
                block = self._newest.get((event.index, "thinking")) or self._begin(event.index, "thinking")
                if block.signature is None:
                    block.signature = []
                block.signature.append(event.signature)
        elif isinstance(event, MessageStart):
            if not self._named:
                self._named, self._id, self._model = True, event.message_id, event.model
        elif isinstance(event, Usage):
            self._usage = event
        elif isinstance(event, MessageStop):
            self._stop = event
        elif isinstance(event, StreamError):
            self._error = event.error
        # BlockStop (rule 2: a closed block still takes its content), Heartbeat, newer kinds: nothing

    def _begin(self, index: int, kind: BlockKind, call_id: str | None = None, name: str | None = None,
               redacted: bool = False, server: bool = False) -> _Building:
        block = _Building(kind, call_id, name, redacted, server)
        self._blocks.append(block)
        self._newest[(index, kind)] = block
        return block

    def _add(self, index: int, kind: BlockKind, text: str) -> None:
        if text:
            block = self._newest.get((index, kind)) or self._begin(index, kind)
            block.parts.append(text)

    def completion(self) -> Completion:
        stop, error = self._stop, self._error
        if error is None and stop is None:
            error = INCOMPLETE
        return Completion(
            message_id=self._id,
            model=self._model,
            blocks=tuple(block if isinstance(block, Search) else block.build() for block in self._blocks),
            usage=self._usage,
            stop_reason=stop.stop_reason if stop is not None else None,
            stop_sequence=stop.stop_sequence if stop is not None else None,
            error=error,
        )


def fold(events: Iterable[Event]) -> Completion:
    """The completion of a whole event sequence."""
    assembler = Assembler()
    for event in events:
        assembler.feed(event)
    return assembler.completion()


def replay(completion: Completion) -> list[Event]:
    """The well-formed event stream of ``completion``: blocks 0, 1, … with one delta each (none
    when empty), then usage, stop and error as it has them. ``fold(replay(c)) == c`` for every
    completion a fold makes (it has a stop or an error)."""
    out: list[Event] = [MessageStart(message_id=completion.message_id, model=completion.model)]
    for index, block in enumerate(completion.blocks):
        if isinstance(block, Text):
            out.append(BlockStart(index=index, block="text"))
            if block.text:
                out.append(TextDelta(index=index, text=block.text))
        elif isinstance(block, Thinking):
            out.append(BlockStart(index=index, block="thinking", redacted=block.redacted))
            if block.text:
                out.append(ThinkingDelta(index=index, text=block.text))
            if block.signature:
                out.append(SignatureDelta(index=index, signature=block.signature))
        elif isinstance(block, Search):
            out.append(msgspec.structs.replace(block.result, index=index))
            continue
        else:
            out.append(BlockStart(index=index, block="tool_call", call_id=block.call_id, name=block.name,
                                  server=block.server))
            if block.arguments:
                out.append(ToolArgsDelta(index=index, fragment=block.arguments))
        out.append(BlockStop(index=index))
    if completion.usage is not None:
        out.append(completion.usage)
    if completion.stop_reason is not None:
        out.append(MessageStop(stop_reason=completion.stop_reason, stop_sequence=completion.stop_sequence))
    if completion.error is not None:
        out.append(StreamError(error=completion.error))
    return out


__all__ = ["INCOMPLETE", "Assembler", "Block", "Completion", "Search", "Text", "Thinking", "ToolCall", "fold", "replay"]
