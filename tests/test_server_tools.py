"""The gateway's tool loop (``pipeline.server_tools.ToolLoop``) event by event: server calls
marked, rounds joined into one answer (indexes go on, later MessageStarts swallowed, usage summed),
the next round's request, a round that also called the client's tools, and the round limit."""

from __future__ import annotations

from pipeline.events import (
    BlockStart,
    BlockStop,
    MessageStart,
    MessageStop,
    SearchResult,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
    UpstreamSeal,
    Usage,
)
from pipeline.model import ChatRequest, Message, TextPart, ToolCallPart, ToolChoice, ToolResultPart
from pipeline.server_tools import ToolLoop, ToolRun


class Tool:
    """A gateway tool that answers each call with its arguments, and records how it was called."""

    def __init__(self, max_uses: int = 5) -> None:
        self.max_uses = max_uses
        self.calls: list[tuple[str, str, int, bool]] = []

    async def run(self, call_id: str, arguments: str, *, index: int, exceeded: bool) -> ToolRun:
        self.calls.append((call_id, arguments, index, exceeded))
        error = "max_uses_exceeded" if exceeded else None
        return ToolRun(result=SearchResult(index=index, call_id=call_id, error=error), text=f"ran {arguments}",
                       is_error=exceeded)


REQUEST = ChatRequest(model="m", messages=(Message(role="user", parts=(TextPart("hi"),)),),
                      tool_choice=ToolChoice(mode="tool", name="web_search"))


def round_one(*, client_call: bool = False) -> list:
    events = [MessageStart(message_id="a", model="m"),
              BlockStart(index=0, block="thinking"), ThinkingDelta(index=0, text="look"),
              ThinkingDelta(index=0, text=" it up"), UpstreamSeal(index=0, data="seal"), BlockStop(index=0),
              BlockStart(index=1, block="tool_call", call_id="call_a", name="web_search"),
              ToolArgsDelta(index=1, fragment='{"query":'), ToolArgsDelta(index=1, fragment='"q"}'),
              BlockStop(index=1)]
    if client_call:
        events += [BlockStart(index=2, block="tool_call", call_id="call_b", name="Bash"),
                   ToolArgsDelta(index=2, fragment='{"command":"ls"}'), BlockStop(index=2)]
    return [*events, Usage(input_tokens=100, output_tokens=10), MessageStop(stop_reason="tool_use")]


async def test_a_round_of_gateway_calls_continues_upstream_in_the_same_answer() -> None:
    tool = Tool()
    loop = ToolLoop({"web_search": tool}, REQUEST, "up")
    out = loop.feed(round_one())
    assert out[0] == MessageStart(message_id="a", model="m")
    assert BlockStart(index=1, block="tool_call", call_id="call_a", name="web_search", server=True) in out
    assert not any(isinstance(e, Usage | MessageStop) for e in out)  # held: the answer goes on
    events, follow = await loop.after_round()
    assert events == [SearchResult(index=2, call_id="call_a")]
    assert tool.calls == [("call_a", '{"query":"q"}', 2, False)]
    assert follow is not None and follow.tool_choice == ToolChoice(mode="auto")  # the forced call was made
    assert follow.messages[1:] == (
        Message(role="assistant", parts=(ToolCallPart(id="call_a", name="web_search", arguments='{"query":"q"}'),),
                reasoning="look it up", upstream_seal=("up", "seal")),
        Message(role="tool", parts=(ToolResultPart(call_id="call_a", content=(TextPart('ran {"query":"q"}'),)),)))
    out = loop.feed([MessageStart(message_id="b", model="m"), BlockStart(index=0, block="text"),
                     TextDelta(index=0, text="found"), BlockStop(index=0),
                     Usage(input_tokens=150, output_tokens=20, cached_input_tokens=100),
                     MessageStop(stop_reason="end_turn")])
    assert out == [BlockStart(index=3, block="text"), TextDelta(index=3, text="found"), BlockStop(index=3),
                   Usage(input_tokens=250, output_tokens=30, cached_input_tokens=100, web_search_requests=1,
                         rounds=2),
                   MessageStop(stop_reason="end_turn")]
    assert await loop.after_round() == ([], None)


async def test_a_round_that_also_calls_the_clients_tools_ends_the_answer_with_tool_use() -> None:
    tool = Tool()
    loop = ToolLoop({"web_search": tool}, REQUEST, "up")
    out = loop.feed(round_one(client_call=True))
    assert BlockStart(index=2, block="tool_call", call_id="call_b", name="Bash") in out  # the client's, unmarked
    events, follow = await loop.after_round()
    assert follow is None
    assert events == [SearchResult(index=3, call_id="call_a"),
                      Usage(input_tokens=100, output_tokens=10, web_search_requests=1),
                      MessageStop(stop_reason="tool_use")]


async def test_past_max_uses_a_call_gets_the_error_and_the_round_after_may_not_call() -> None:
    tool = Tool(max_uses=1)
    loop = ToolLoop({"web_search": tool}, REQUEST, "up")
    loop.feed(round_one())
    _, follow = await loop.after_round()
    assert follow is not None and follow.tool_choice == ToolChoice(mode="auto")
    loop.feed([MessageStart(message_id="b", model="m"),
               BlockStart(index=0, block="tool_call", call_id="call_c", name="web_search"),
               ToolArgsDelta(index=0, fragment='{"query":"again"}'), BlockStop(index=0),
               MessageStop(stop_reason="tool_use")])
    events, follow = await loop.after_round()
    assert events == [SearchResult(index=4, call_id="call_c", error="max_uses_exceeded")]  # after call 3
    assert [exceeded for *_, exceeded in tool.calls] == [False, True]
    assert follow is not None and follow.tool_choice == ToolChoice(mode="none")


async def test_an_answer_without_gateway_calls_passes_through() -> None:
    loop = ToolLoop({"web_search": Tool()}, REQUEST, "up")
    events = [MessageStart(message_id="a", model="m"), BlockStart(index=0, block="text"),
              TextDelta(index=0, text="hi"), BlockStop(index=0), Usage(input_tokens=5, output_tokens=1),
              MessageStop(stop_reason="end_turn")]
    assert loop.feed(list(events)) == events
    assert await loop.after_round() == ([], None)
