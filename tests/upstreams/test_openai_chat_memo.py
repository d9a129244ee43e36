"""The ``openai_chat`` upstream's encode resumes its own translation per upstream and model
(``ctx.recall``): a fallback attempt at another upstream within a request keeps its own slot, so the
session's next request resumes both, each body the memory-less one."""

from __future__ import annotations

from pipeline.attempt import Attempt
from pipeline.conversation import Conversations
from pipeline.model import ChatRequest, Message, TextPart, ToolCallPart, ToolResultPart
from pipeline.testing import make_context
from pipeline.upstream import UpstreamConfig
from tests.session_helpers import bound
from upstreams.openai_chat import OpenAIChatUpstream


def history(turns: int) -> list[Message]:
    out = [Message(role="user", parts=(TextPart("go"),))]
    for n in range(turns):
        out += [Message(role="assistant", reasoning=f"r{n}",
                        parts=(ToolCallPart(id=f"c{n}", name="shell", arguments=f'{{"n":{n}}}'),)),
                Message(role="tool", parts=(ToolResultPart(call_id=f"c{n}", content=(TextPart("out " * 500),)),))]
    return out


def test_a_fallback_keeps_its_own_slot() -> None:
    first = OpenAIChatUpstream(UpstreamConfig(type="openai_chat", base_url="http://127.0.0.1:9/v1",
                                              profile="deepseek"), upstream_id="first")
    fallback = OpenAIChatUpstream(UpstreamConfig(type="openai_chat", base_url="http://127.0.0.1:9/v1",
                                                 profile="vllm"), upstream_id="fallback")
    memory = Conversations()
    messages = history(20)
    reused = []
    for turns in (20, 21):
        messages = messages + history(turns)[len(messages):]
        request = ChatRequest(model="m", messages=tuple(messages), stop=("STOP",))
        ctx = make_context()
        ctx.recall = bound(memory, messages)
        for up in (first, fallback):  # the first attempt, then a fallback at another upstream
            attempt = Attempt.aimed(up, "m", model="up-model")
            body = up.encode(request, attempt, ctx)
            assert body == up.encode(request, attempt, make_context())  # an unbound recall
        reused.append(sorted(slot.reused for name, slot in memory.latest().slots.items()
                             if name.startswith("chat_encode")))
    assert reused == [[0, 0], [41, 41]]
