"""The Chat upstream encoder resumed per session (``chat/upstream_encode_messages.py``).

A session's next request re-encodes only the messages that are not the very objects of its last
request's, with a ``Recall`` bound by a ``Conversations``; the body and the losses must be byte for
byte the memory-less encoder's, whatever changed: messages appended, one changed anywhere, a rewind,
thinking toggled, another profile or model card, the reach-back of stray tool text, tool images
waiting for their user message.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.conversation import Conversations, Recall
from pipeline.model import (
    ChatRequest,
    ImagePart,
    Loss,
    Message,
    TextPart,
    ThinkingConfig,
    ToolCallPart,
    ToolResultPart,
)
from pipeline.model_limits import ModelCard, card_for
from pipeline.profiles import PROFILES, Profile
from pipeline.protocols.anthropic import AnthropicCodec
from pipeline.protocols.chat import encode_request
from tests.session_helpers import bound, history_step, message, next_history

SLOT = "chat_encode"
DEEPSEEK = PROFILES["deepseek"]
VLLM = PROFILES["vllm"]
# Every built-in profile folds system messages and sends text content as a string: one that does neither.
UNFOLDED = msgspec.structs.replace(VLLM, name="unfolded", fold_system=False, content_as_string=False)
_PROFILES = {**PROFILES, "unfolded": UNFOLDED}


def plain(request: ChatRequest, profile: Profile, card: ModelCard | None = None) -> tuple[bytes, list[Loss]]:
    losses: list[Loss] = []
    body = encode_request(request, model="up-model", profile=profile, card=card,
                          lose=lambda what, detail: losses.append(Loss(what, detail)))
    return body, losses


class Session:
    """One conversation's requests, each encoded with its bound ``Recall`` and without memory."""

    def __init__(self) -> None:
        self.memory = Conversations()
        self.reused: list[int] = []

    def encode(self, request: ChatRequest, profile: Profile, card: ModelCard | None = None) -> bytes:
        recall = bound(self.memory, request.messages)
        losses: list[Loss] = []
        body = encode_request(request, model="up-model", profile=profile, card=card, recall=recall, slot=SLOT,
                              lose=lambda what, detail: losses.append(Loss(what, detail)))
        assert (body, losses) == plain(request, profile, card)
        kept = recall.kept(SLOT)
        self.reused.append(kept.reused if kept is not None else 0)
        return body


def request(messages: list[Message], thinking: bool | None = None) -> ChatRequest:
    return ChatRequest(model="m", messages=tuple(messages), system=("You are terse.",),
                       thinking=ThinkingConfig(enabled=thinking))


def tool_turn(n: int, size: int = 40) -> list[Message]:
    call = f"call_{n}"
    return [
        Message(role="assistant", reasoning=f"step {n}",
                parts=(TextPart(f"Running step {n}."), ToolCallPart(id=call, name="shell", arguments=f'{{"n":{n}}}'))),
        Message(role="tool", parts=(ToolResultPart(call_id=call, content=(TextPart(f"out {n} " + "x" * size),)),)),
    ]


class TestReuse:
    def test_each_next_turn_reuses_every_message_before_it(self) -> None:
        """A session of 30 tool turns: request n + 1 re-encodes only its own new turn."""
        session = Session()
        history = [Message(role="user", parts=(TextPart("fix the tests"),))]
        sizes = []
        for n in range(30):
            history = history + tool_turn(n)
            sizes.append(len(history))
            session.encode(request(history), DEEPSEEK)
        assert session.reused == [0, *sizes[:-1]]

    def test_a_changed_message_is_reencoded_with_all_after_it(self) -> None:
        session = Session()
        history = [Message(role="user", parts=(TextPart("go"),))] + [m for n in range(5) for m in tool_turn(n)]
        session.encode(request(history), DEEPSEEK)
        changed = [*history[:4], Message(role="tool", parts=(ToolResultPart(call_id="call_1", content=(
            TextPart("edited"),)),)), *history[5:]]
        session.encode(request(changed), DEEPSEEK)
        rewound = changed[:3]
        session.encode(request(rewound), DEEPSEEK)
        assert session.reused == [0, 4, 3]

    def test_another_key_reencodes_everything(self) -> None:
        """Thinking toggled, another profile, another model card: nothing reused, same bodies."""
        session = Session()
        history = [Message(role="user", parts=(TextPart("go"),))] + tool_turn(0)
        session.encode(request(history), DEEPSEEK)
        session.encode(request(history, thinking=False), DEEPSEEK)
        session.encode(request(history, thinking=False), VLLM)
        card = msgspec.structs.replace(card_for("up-model", VLLM), reasoning_field="reasoning_content")
        session.encode(request(history, thinking=False), VLLM, card)
        session.encode(request(history, thinking=False), VLLM, card)
        assert session.reused == [0, 0, 0, 0, 3]

    def test_stray_tool_text_reaching_into_the_message_before(self) -> None:
        """Text before a tool message's first result is appended to the tool message before it:
        the earlier message's bytes are then not reused past it, and a first new message reaching
        into a reused message starts the translation over."""
        session = Session()
        calls = Message(role="assistant", parts=(ToolCallPart(id="a", name="f", arguments="{}"),
                                                 ToolCallPart(id="b", name="f", arguments="{}")))
        first = Message(role="tool", parts=(ToolResultPart(call_id="a", content=(TextPart("A"),)),))
        stray = Message(role="tool", parts=(TextPart("stray"), ToolResultPart(call_id="b", content=(TextPart("B"),))))
        head = [Message(role="user", parts=(TextPart("go"),)), calls, first]
        body = session.encode(request([*head, stray]), DEEPSEEK)
        assert json.loads(body)["messages"][3]["content"] == "A\nstray"
        other = Message(role="tool", parts=(ToolResultPart(call_id="b", content=(TextPart("B2"),)),))
        body = session.encode(request([*head, other]), DEEPSEEK)
        assert json.loads(body)["messages"][3]["content"] == "A"
        session.encode(request([*head, stray]), DEEPSEEK)  # the first request's fold: resumed after 2
        more = Message(role="tool", parts=(TextPart("more"),))
        body = session.encode(request([*head, other, more]), DEEPSEEK)  # would reach into a reused message
        assert json.loads(body)["messages"][4]["content"] == "B2\nmore"
        assert session.reused == [0, 2, 2, 0]

    def test_tool_images_waiting_for_their_user_message(self) -> None:
        """A vision model: a tool result's image goes into a user message after the run of tool
        messages; a request ending inside the run resumes with the images still waiting."""
        session = Session()
        card = msgspec.structs.replace(card_for("up-model", VLLM), vision=True)
        image = ImagePart(url="data:image/png;base64,AAAA")
        history = [Message(role="user", parts=(TextPart("look"),)),
                   Message(role="assistant", parts=(ToolCallPart(id="s", name="shot", arguments="{}"),)),
                   Message(role="tool", parts=(ToolResultPart(call_id="s", content=(TextPart("shot"), image)),))]
        body = session.encode(request(history), VLLM, card)
        assert [m["role"] for m in json.loads(body)["messages"]] == ["system", "user", "assistant", "tool", "user"]
        history = [*history, Message(role="user", parts=(TextPart("and now?"),))]
        body = session.encode(request(history), VLLM, card)
        assert [m["role"] for m in json.loads(body)["messages"]] == ["system", "user", "assistant", "tool", "user",
                                                                     "user"]
        assert session.reused == [0, 3]

    def test_an_unbound_recall_keeps_nothing(self) -> None:
        recall = Recall()
        history = [Message(role="user", parts=(TextPart("go"),))] + tool_turn(0)
        body = encode_request(request(history), model="up-model", profile=DEEPSEEK, recall=recall, slot=SLOT)
        assert body == plain(request(history), DEEPSEEK)[0] and recall.kept(SLOT) is None


_CARDS = [None, msgspec.structs.replace(card_for("up-model", VLLM), vision=True),
          msgspec.structs.replace(card_for("up-model", VLLM), vision=False, reasoning_field="reasoning_content")]
_step = st.one_of(
    history_step,
    st.tuples(st.just("thinking"), st.sampled_from([None, True, False])),
    st.tuples(st.just("profile"), st.sampled_from(sorted(_PROFILES))),
    st.tuples(st.just("card"), st.integers(0, len(_CARDS) - 1)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=st.lists(message(), max_size=8), steps=st.lists(_step, min_size=1, max_size=8))
def test_a_random_session_encodes_as_without_memory(first: list[Message], steps: list[tuple[Any, ...]]) -> None:
    """Random sessions (``tests/session_helpers.py``), now and then thinking toggled, another
    profile or another model card: every body and its losses are the memory-less encoder's."""
    session = Session()
    history, thinking, profile, card = first, None, UNFOLDED, None
    session.encode(request(history, thinking), profile, card)
    for step in steps:
        kind = step[0]
        history = next_history(history, step)
        if kind == "thinking":
            thinking = step[1]
        elif kind == "profile":
            profile = _PROFILES[step[1]]
        elif kind == "card":
            card = _CARDS[step[1]]
        session.encode(request(history, thinking), profile, card)  # asserts the memory-less body


def _claude_code_body(turns: int, result_bytes: int) -> bytes:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "fix the failing tests in this repo"}]
    for n in range(turns):
        messages.append({"role": "assistant", "content": [
            {"type": "text", "text": f"Looking at step {n}."},
            {"type": "tool_use", "id": f"toolu_{n:04d}", "name": "Bash", "input": {"command": f"cat file_{n}.py"}}]})
        messages.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": f"toolu_{n:04d}",
             "content": f"# file {n}\n" + "def f(x):\n    return \"x\\n\" * x\n" * (result_bytes // 32)}]})
    return json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 32000, "stream": True, "messages": messages,
                       "system": [{"type": "text", "text": "You are Claude Code."}]}).encode()


def test_a_megabyte_session_through_the_anthropic_decoder() -> None:
    """A 1 MB Claude Code history of 40 tool turns, then the same with one more: the decoder hands
    the encoder the same message objects, and the encoder re-encodes only the new turn's two."""
    memory, codec = Conversations(), AnthropicCodec()
    bodies = [_claude_code_body(40, 25_000), _claude_code_body(41, 25_000)]
    assert len(bodies[0]) > 1_000_000
    reused = []
    for body in bodies:
        recall = memory.recall("scope")
        req, _ = codec.decode_request(body, recall)
        encoded = encode_request(req, model="deepseek-v4-pro", profile=DEEPSEEK, recall=recall, slot=SLOT)
        assert encoded == encode_request(codec.decode_request(body)[0], model="deepseek-v4-pro", profile=DEEPSEEK)
        reused.append(recall.kept(SLOT).reused)
        messages = len(req.messages)
    assert reused == [0, messages - 2]
