"""Tools the gateway runs itself inside one client request (a web search for a client whose hosted
tool the upstream cannot run): the loop between the upstream's rounds.

A request stage (``stages/web_search``) offers the model a function for the client's hosted tool
and registers a ``GatewayTool`` on the attempt (``Attempt.gateway_tools``, by the function's
upstream name). The attempt then puts a ``ToolLoop`` between the upstream and the response chain:

- a call to a gateway tool is marked ``BlockStart.server`` (the client's encoder renders its own
  hosted tool's call) and its arguments are kept;
- every round's ``MessageStart`` after the first is swallowed, block indexes continue from the
  previous round, the ``Usage`` of the rounds is summed (and the searches counted) and sent
  once, before the final ``MessageStop``;
- a round that ends with ``tool_use`` and gateway calls in it does not end the answer: the
  attempt runs the calls (``GatewayTool.run``; a failure is a result the model reads, never a
  failed request), sends their ``SearchResult`` blocks, and when every call of the round was the
  gateway's, streams the next round from the upstream into the same answer: the shaped request
  plus the round as an assistant message (its exact reasoning text and the upstream's seal, its
  text, its calls) and one tool message per call. A round that also called the client's tools
  ends with ``tool_use`` for those.

Rounds are bounded: a tool's ``max_uses`` (then a call gets the ``max_uses_exceeded`` error), and
after ``max_uses + 1`` rounds the next one is asked with ``tool_choice: none``.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from pipeline.events import (
    BlockStart,
    BlockStop,
    Event,
    MessageStart,
    MessageStop,
    SearchHit,
    SearchResult,
    SignatureDelta,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
    UpstreamSeal,
    Usage,
)
from pipeline.model import ChatRequest, Message, Part, TextPart, ToolCallPart, ToolChoice, ToolResultPart

_INDEXED = (BlockStart, BlockStop, TextDelta, ThinkingDelta, SignatureDelta, UpstreamSeal, ToolArgsDelta)


# What the model reads for each error code (Anthropic's web_search_tool_result_error codes).
SEARCH_ERRORS = {
    "max_uses_exceeded": "the limit of searches for this answer is reached; answer from the results you have",
    "invalid_tool_input": 'call it with {"query": "<words>"}',
    "query_too_long": "the query is too long; use fewer words",
    "too_many_requests": "the search service is rate limited; try again later or answer without it",
    "unavailable": "the search service failed; try again or answer without it",
}


def search_text(query: str, hits: tuple[SearchHit, ...] | list[SearchHit]) -> str:
    """What the model reads for a search: each hit's title, URL, age and snippet. Client decoders
    rebuild it from a replayed result, so the model reads the same text on later turns."""
    if not hits:
        return f'Web search results for "{query}": no results.'
    lines = [f'Web search results for "{query}":']
    for n, hit in enumerate(hits, 1):
        lines.append(f"\n[{n}] {hit.title or hit.url}\nURL: {hit.url}")
        if hit.page_age:
            lines.append(f"Published: {hit.page_age}")
        if hit.snippet:
            lines.append(hit.snippet)
    return "\n".join(lines)


def search_gone_text(query: str) -> str:
    """What the model reads for a search whose results the client did not keep."""
    return f'Web search results for "{query}": not kept in this conversation (search again if they are needed).'


def search_error_text(code: str) -> str:
    return f"Web search error: {code} ({SEARCH_ERRORS.get(code, 'the search failed')})."


class ToolRun(msgspec.Struct, frozen=True, kw_only=True):
    """What one gateway-run call gave: the block for the client, the text for the model."""

    result: SearchResult
    text: str
    is_error: bool = False


class GatewayTool(Protocol):
    """A tool the gateway runs for the model (``stages.web_search`` makes one)."""

    max_uses: int

    async def run(self, call_id: str, arguments: str, *, index: int, exceeded: bool) -> ToolRun:
        """Run one call (``exceeded``: over ``max_uses``, answer with that error). Never raises
        for a failure of the tool's own service: that is an error result."""
        ...


class _Call:
    __slots__ = ("args", "call_id", "name")

    def __init__(self, call_id: str, name: str) -> None:
        self.call_id = call_id
        self.name = name
        self.args: list[str] = []


class ToolLoop:
    """One attempt's rounds (see the module docstring): ``feed`` each read's events, then
    ``after_round()`` when the upstream's stream returned."""

    __slots__ = ("_calls", "_client_calls", "_held_stop", "_index", "_offset", "_open", "_reasoning",
                 "_request", "_rounds", "_seal", "_searches", "_seen_start", "_text", "_thinking", "_tools",
                 "_upstream_id", "_usage", "_uses")

    def __init__(self, tools: dict[str, GatewayTool], request: ChatRequest, upstream_id: str) -> None:
        self._tools = tools
        self._request = request
        self._upstream_id = upstream_id
        self._rounds = 1
        self._uses: dict[str, int] = {}
        self._searches = 0
        self._usage: Usage | None = None
        self._seen_start = False
        self._offset = 0  # this round's index 0 is the answer's index ``_offset``
        self._index = 0  # the answer's next free index
        self._begin_round()

    def _begin_round(self) -> None:
        self._calls: list[_Call] = []
        self._client_calls = 0
        self._open: dict[int, _Call] = {}
        self._reasoning: list[str] = []
        self._thinking = False
        self._seal: str | None = None
        self._text: list[str] = []
        self._held_stop: MessageStop | None = None

    def feed(self, events: list[Event]) -> list[Event]:
        out: list[Event] = []
        for event in events:
            kind = type(event)
            if kind in _INDEXED:
                out.append(self._indexed(event))  # type: ignore[arg-type]
            elif kind is Usage:
                self._add_usage(event)  # type: ignore[arg-type]
            elif kind is MessageStop:
                stop: MessageStop = event  # type: ignore[assignment]
                if stop.stop_reason == "tool_use" and self._calls:
                    self._held_stop = stop
                else:
                    out.extend(self._final(stop))
            elif kind is MessageStart:
                if not self._seen_start:
                    self._seen_start = True
                    out.append(event)
            else:
                out.append(event)
        return out

    def _indexed(self, event: BlockStart | BlockStop | TextDelta | ThinkingDelta | SignatureDelta | UpstreamSeal
                 | ToolArgsDelta) -> Event:
        local = event.index
        index = local + self._offset
        self._index = max(self._index, index + 1)
        if type(event) is TextDelta:
            self._text.append(event.text)
        elif type(event) is ThinkingDelta:
            self._reasoning.append(event.text)
        elif type(event) is ToolArgsDelta:
            call = self._open.get(local)
            if call is not None:
                call.args.append(event.fragment)
        elif type(event) is BlockStart:
            if event.block == "thinking":
                self._thinking = True
            elif event.block == "tool_call":
                if event.name in self._tools:
                    call = _Call(event.call_id or f"call_gw{self._rounds}_{local}", event.name or "")
                    self._open[local] = call
                    self._calls.append(call)
                    return BlockStart(index=index, block="tool_call", call_id=call.call_id, name=event.name,
                                      server=True)
                self._client_calls += 1
        elif type(event) is UpstreamSeal:
            self._seal = event.data
        return msgspec.structs.replace(event, index=index) if self._offset else event

    def _add_usage(self, usage: Usage) -> None:
        """Each round's usage is whole for that round; the answer's is their sum."""
        if self._usage is None:
            self._usage = usage
        else:
            old = self._usage
            self._usage = Usage(input_tokens=old.input_tokens + usage.input_tokens,
                                output_tokens=old.output_tokens + usage.output_tokens,
                                cached_input_tokens=old.cached_input_tokens + usage.cached_input_tokens,
                                reasoning_tokens=old.reasoning_tokens + usage.reasoning_tokens,
                                rounds=old.rounds + usage.rounds)

    def _final(self, stop: MessageStop) -> list[Event]:
        usage = self._usage
        if usage is None and not self._searches:
            return [stop]
        usage = msgspec.structs.replace(usage or Usage(), web_search_requests=self._searches)
        return [usage, stop]

    async def after_round(self) -> tuple[list[Event], ChatRequest | None]:
        """The round ended: (events to send, the next round's request or ``None``: the answer is
        complete with those events)."""
        stop = self._held_stop
        if stop is None:  # ended without gateway calls (or without a stop: an error went out)
            return [], None
        out: list[Event] = []
        results: list[Message] = []
        for call in self._calls:
            tool = self._tools[call.name]
            used = self._uses.get(call.name, 0)
            exceeded = used >= tool.max_uses
            if not exceeded:
                self._uses[call.name] = used + 1
                self._searches += 1
            run = await tool.run(call.call_id, "".join(call.args), index=self._index, exceeded=exceeded)
            self._index += 1
            out.append(run.result)
            results.append(Message(role="tool", parts=(
                ToolResultPart(call_id=call.call_id, content=(TextPart(run.text),), is_error=run.is_error),)))
        if self._client_calls:  # the client runs the rest of the round: the answer ends here
            out.extend(self._final(stop))
            return out, None
        self._request = self._next_request(results)
        self._offset = self._index
        self._rounds += 1
        self._begin_round()
        return out, self._request

    def _next_request(self, results: list[Message]) -> ChatRequest:
        request = self._request
        parts: list[Part] = []
        text = "".join(self._text)
        if text:
            parts.append(TextPart(text))
        parts.extend(ToolCallPart(id=c.call_id, name=c.name, arguments="".join(c.args)) for c in self._calls)
        turn = Message(role="assistant", parts=tuple(parts),
                       reasoning="".join(self._reasoning) if self._thinking else None,
                       upstream_seal=(self._upstream_id, self._seal) if self._seal is not None else None)
        choice = request.tool_choice
        if choice is not None and choice.mode in ("tool", "required"):
            choice = ToolChoice(mode="auto")  # a forced call was made: the model may answer now
        limit = max((tool.max_uses for tool in self._tools.values()), default=0) + 1
        if self._rounds >= limit:
            choice = ToolChoice(mode="none")
        return msgspec.structs.replace(request, messages=(*request.messages, turn, *results), tool_choice=choice)


__all__ = ["SEARCH_ERRORS", "GatewayTool", "ToolLoop", "ToolRun", "search_error_text", "search_gone_text",
           "search_text"]
