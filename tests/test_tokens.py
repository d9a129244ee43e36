"""The prompt estimate resumed per session (``pipeline.tokens.messages_estimate``): a session's
next request estimates only the messages that are not the very objects of its last request's, and
the estimate is the same float as without memory, whatever changed."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.attempt import Attempt
from pipeline.conversation import Conversations, Recall
from pipeline.model import ChatRequest, Message, TextPart, ToolCallPart, ToolResultPart
from pipeline.testing import make_context
from pipeline.tokens import raw_estimate
from pipeline.upstream import Upstream, UpstreamConfig
from stages.token_budget import TokenBudget
from tests.session_helpers import bound, history_step, message, next_history

SLOT = "tokens"


def request(messages: list[Message]) -> ChatRequest:
    return ChatRequest(model="m", messages=tuple(messages), system=("You are terse.",))


def estimate(memory: Conversations, messages: list[Message], slot: str = SLOT) -> tuple[float, int]:
    """(the estimate with a bound recall, how many messages it took from the request before),
    asserting it is the memory-less estimate."""
    recall = bound(memory, messages)
    got = raw_estimate(request(messages), recall, slot)
    assert got == raw_estimate(request(messages))
    return got, recall.kept(slot).reused if recall.kept(slot) is not None else 0


def tool_turn(n: int) -> list[Message]:
    return [Message(role="assistant", parts=(ToolCallPart(id=f"c{n}", name="shell", arguments=f'{{"n":{n}}}'),)),
            Message(role="tool", parts=(ToolResultPart(call_id=f"c{n}", content=(TextPart("ok " * 2000),)),))]


def test_each_next_turn_estimates_only_its_new_messages() -> None:
    memory = Conversations()
    history = [Message(role="user", parts=(TextPart("go"),))]
    reused, sizes = [], []
    for n in range(30):
        history = history + tool_turn(n)
        sizes.append(len(history))
        reused.append(estimate(memory, history)[1])
    assert reused == [0, *sizes[:-1]]
    changed = [*history[:7], Message(role="user", parts=(TextPart("edited"),)), *history[8:]]
    assert estimate(memory, changed)[1] == 7


def test_consumers_keep_their_own_slots() -> None:
    """Two consumers of one request (the token budget, count_tokens) each resume their own sums."""
    memory = Conversations()
    history = [Message(role="user", parts=(TextPart("go"),)), *tool_turn(0)]
    estimate(memory, history, "a")
    assert estimate(memory, [*history, *tool_turn(1)], "b")[1] == 0


def test_an_unbound_recall_keeps_nothing() -> None:
    recall = Recall()
    history = [Message(role="user", parts=(TextPart("go"),))]
    assert raw_estimate(request(history), recall) == raw_estimate(request(history)) and recall.kept(SLOT) is None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=st.lists(message(), max_size=8), steps=st.lists(history_step, min_size=1, max_size=8))
def test_a_random_session_estimates_as_without_memory(first: list[Message], steps: list[tuple[Any, ...]]) -> None:
    memory = Conversations()
    history = first
    estimate(memory, history)
    for step in steps:
        history = next_history(history, step)
        estimate(memory, history)  # asserts the memory-less estimate


async def test_the_token_budget_resumes_its_estimate() -> None:
    """The stage keeps its sums in its own slot (its id) of the request's recall: the session's
    next request gets the prompt estimate of a fresh count, from its new messages only."""
    up = Upstream(UpstreamConfig(type="x", profile="deepseek"), upstream_id="u")
    stage = TokenBudget(TokenBudget.Config(), stage_id="p.1.token_budget")
    memory = Conversations()
    history = [Message(role="user", parts=(TextPart("go"),)), *tool_turn(0)]
    reused = []
    for messages in (history, [*history, *tool_turn(1)]):
        estimates = []
        for recall in (bound(memory, messages), Recall()):
            ctx = make_context()
            ctx.recall = recall
            ctx.aim(Attempt.aimed(up, "deepseek-v4-pro"))
            await stage.on_request(request(messages), ctx)
            estimates.append(ctx.prompt_estimate)
            if recall.kept(stage.id) is not None:
                reused.append(recall.kept(stage.id).reused)
        assert estimates[0] == estimates[1]
    assert reused == [0, 3]
