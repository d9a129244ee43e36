"""Response way of ``tool_ids``: ``ToolStream.feed(event)`` holds each tool_call block to its stop,
then releases it with a client-safe id (fresh when missing, invalid or a repeat) and the client's
tool name (a call the gateway runs itself, ``BlockStart.server``, keeps its id and name: its
result block names that id). Arguments that are not a JSON object (cut off by the token limit) drop the block: later
indexes shift down and ``MessageStop`` says ``max_tokens``. apply_patch arguments are repaired.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from pipeline.events import (
    BlockStart,
    BlockStop,
    Event,
    MessageStop,
    SearchResult,
    SignatureDelta,
    StreamError,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
    UpstreamSeal,
)
from stages.tool_ids.apply_patch import fix_arguments
from stages.tool_ids.ids import fresh_id, valid_for_client
from stages.tool_ids.names import NameMap

Lose = Callable[[str, str], None]
_TEXT = frozenset({TextDelta, ThinkingDelta})
_INDEXED = (BlockStart, BlockStop, TextDelta, ThinkingDelta, SignatureDelta, UpstreamSeal, ToolArgsDelta, SearchResult)
_DECODER = msgspec.json.Decoder()


class ToolMap(msgspec.Struct, frozen=True, kw_only=True):
    """What the request way learnt, for the response way (kept in ``ctx.state``).

    ``id_reverse``: upstream id → client id for the ids that were mapped; ``history_ids``: every
    call id of the history in both forms; ``names``: the tool name map; ``patch_tools``: client
    names of the apply_patch tools.
    """

    id_reverse: dict[str, str] = {}
    history_ids: frozenset[str] = frozenset()
    names: NameMap = NameMap()
    patch_tools: frozenset[str] = frozenset()


class ToolStream:
    """Per-response state; ``feed`` each event, ``close`` at end of input."""

    __slots__ = ("_args", "_dropped", "_held", "_lose", "_map", "_offset", "_used")

    def __init__(self, tool_map: ToolMap, lose: Lose) -> None:
        self._map = tool_map
        self._lose = lose
        self._used = set(tool_map.history_ids)
        self._offset = 0  # blocks dropped so far: later indexes shift down by this much
        self._dropped = False
        self._held: BlockStart | None = None
        self._args: list[str] = []

    def feed(self, event: Event) -> Sequence[Event]:
        held = self._held
        if held is None and not self._offset and type(event) in _TEXT:  # the hot path
            return (event,)
        if held is not None:
            if isinstance(event, ToolArgsDelta) and event.index == held.index:
                self._args.append(event.fragment)
                return []
            if isinstance(event, BlockStop) and event.index == held.index:
                return self._release()
            if isinstance(event, BlockStart):  # a new block without a stop: end the held one here
                return [*self._release(), *self.feed(event)]
            if isinstance(event, MessageStop | StreamError):
                self._drop("the stream ended inside the call")
                return self.feed(event)
            return [self._shift(event)]
        if isinstance(event, BlockStart) and event.block == "tool_call":
            self._held, self._args = event, []
            return []
        if isinstance(event, MessageStop) and self._dropped and event.stop_reason != "max_tokens":
            return [msgspec.structs.replace(event, stop_reason="max_tokens", stop_sequence=None)]
        return [self._shift(event)]

    def close(self) -> list[Event]:
        """End of input: a call still held never finished; it is dropped, not sent broken."""
        if self._held is not None:
            self._drop("the stream ended inside the call")
        return []

    def _shift(self, event: Event) -> Event:
        if self._offset and isinstance(event, _INDEXED):
            return msgspec.structs.replace(event, index=event.index - self._offset)
        return event

    def _drop(self, why: str) -> None:
        held = self._held
        assert held is not None
        name = self._map.names.down(held.name) if held.name else "?"
        self._lose("tool_args", f"call {name} dropped: {why}")
        self._held, self._args = None, []
        self._offset += 1
        self._dropped = True

    def _release(self) -> list[Event]:
        held = self._held
        assert held is not None
        raw = "".join(self._args)
        name = self._map.names.down(held.name) if held.name else held.name
        value: Any = {}
        if raw.strip():
            try:
                value = _DECODER.decode(raw)
            except msgspec.DecodeError:
                self._drop("its arguments are not valid JSON (cut off by the output limit?)")
                return []
        args: str | None = None  # None: re-emit the fragments as they came
        if name in self._map.patch_tools:
            fix = fix_arguments(raw, value)
            if fix.error is not None:
                self._lose("apply_patch_invalid", fix.error)
            elif fix.repairs:
                self._lose("apply_patch_repaired", ", ".join(fix.repairs))
            if fix.changed:
                args = fix.arguments
        if args is None and not isinstance(value, dict):
            self._drop(f"its arguments are JSON {type(value).__name__}, not an object")
            return []
        index = held.index - self._offset
        if held.server:  # the gateway's own call: its id and name are the gateway's, left as they are
            start = msgspec.structs.replace(held, index=index)
        else:
            start = BlockStart(index=index, block="tool_call", call_id=self._client_id(held.call_id), name=name)
        if args is not None:
            deltas = [ToolArgsDelta(index=index, fragment=args)]
        elif not raw.strip():
            deltas = []  # no arguments: encoders read that as {}; whitespace would not parse
        else:
            deltas = [ToolArgsDelta(index=index, fragment=f) for f in self._args if f]
        self._held, self._args = None, []
        return [start, *deltas, BlockStop(index=index)]

    def _client_id(self, upstream: str | None) -> str:
        """The upstream id when the client accepts it and it is new; else a fresh one.

        A mapped form of a history id (``id_reverse``) would map back to a history id, which is a
        repeat: it gets a fresh id like any other repeat, so the mapped form never reaches the client.
        """
        call_id = upstream or ""
        if call_id in self._map.id_reverse:
            call_id = self._map.id_reverse[call_id]
        if not valid_for_client(call_id) or call_id in self._used:
            call_id = fresh_id()
            while call_id in self._used:
                call_id = fresh_id()
        self._used.add(call_id)
        return call_id


__all__ = ["ToolMap", "ToolStream"]
