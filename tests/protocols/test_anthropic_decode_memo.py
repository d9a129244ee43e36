"""The Anthropic decoder resumed from a conversation's memory decodes exactly what the whole decode
does (``client_decode._messages``): random sessions, each next request the last one with turns
added, an earlier message edited, or the cache marker moved, as Claude Code moves it."""

from __future__ import annotations

import copy
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.conversation import Conversations
from pipeline.errors import RequestError
from pipeline.protocols.anthropic.client_decode import decode_request

TEXT = st.text(alphabet="abc \n\"\\é", max_size=12)
CC = {"type": "ephemeral"}


def block(kind: str, text: str, n: int) -> dict[str, Any]:
    return {
        "text": {"type": "text", "text": text or "t"},
        "thinking": {"type": "thinking", "thinking": text, "signature": f"sig{n}"},
        "tool_use": {"type": "tool_use", "id": f"toolu_{n}", "name": "Bash", "input": {"command": text}},
        "tool_result": {"type": "tool_result", "tool_use_id": f"toolu_{n}", "content": text or "ok"},
        "result_blocks": {"type": "tool_result", "tool_use_id": f"toolu_{n}", "is_error": True,
                          "content": [{"type": "text", "text": text or "x"}]},
        "unknown": {"type": "mystery_block", "data": text},  # a loss, recorded by path
        "server": {"type": "server_tool_use", "id": f"srv_{n}", "name": "web_fetch", "input": {}},
    }[kind]


ROLE_BLOCKS = {"user": ("text", "tool_result", "result_blocks", "unknown"),
               "assistant": ("text", "thinking", "tool_use", "unknown", "server"),
               "system": ("text",)}


@st.composite
def message(draw: st.DrawFn) -> dict[str, Any]:
    role = draw(st.sampled_from(("user", "user", "assistant", "assistant", "system")))
    if draw(st.booleans()):
        return {"role": role, "content": draw(TEXT)}
    kinds = draw(st.lists(st.sampled_from(ROLE_BLOCKS[role]), min_size=1, max_size=3))
    n = draw(st.integers(0, 5))
    return {"role": role, "content": [block(k, draw(TEXT), n) for k in kinds]}


def body(messages: list[dict[str, Any]]) -> bytes:
    return msgspec.json.encode({"model": "claude-opus-4-7", "max_tokens": 1000, "system": "sys",
                                "messages": messages, "tools": [], "stream": True})


def move_marker(messages: list[dict[str, Any]]) -> None:
    """Claude Code's cache marker: on the last message's last block only."""
    for m in messages:
        if isinstance(m["content"], list):
            for b in m["content"]:
                b.pop("cache_control", None)
    last = messages[-1]["content"] if messages else None
    if isinstance(last, list):
        last[-1]["cache_control"] = CC


def decoded_with(store: Conversations, data: bytes) -> Any:
    recall = store.recall("scope")
    return decode_request(data, recall), recall


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=st.lists(message(), min_size=1, max_size=8), steps=st.lists(
    st.tuples(st.sampled_from(("extend", "edit", "truncate", "same")), st.lists(message(), max_size=3),
              st.integers(0, 20)), min_size=1, max_size=4))
def test_a_resumed_decode_equals_the_whole_one(first: list[dict[str, Any]], steps: list[Any]) -> None:
    store = Conversations()
    messages = copy.deepcopy(first)
    move_marker(messages)
    decoded_with(store, body(messages))
    for op, added, at in steps:
        messages = copy.deepcopy(messages)
        if op == "extend":
            messages.extend(copy.deepcopy(added))
        elif op == "edit" and added:
            messages[at % len(messages)] = copy.deepcopy(added[0])
        elif op == "truncate" and len(messages) > 1:
            del messages[max(1, at % len(messages)):]
        move_marker(messages)
        data = body(messages)
        (resumed, echo), recall = decoded_with(store, data)
        whole, whole_echo = decode_request(data)
        assert resumed == whole and echo == whole_echo
        assert resumed.losses == whole.losses  # in order, with their paths


def test_a_session_decodes_only_its_new_messages_and_hands_back_the_same_objects() -> None:
    store = Conversations()
    history: list[dict[str, Any]] = [{"role": "user", "content": "start"}]
    previous = None
    for turn in range(30):
        history.append({"role": "assistant", "content": [block("thinking", f"why {turn}", turn),
                                                         block("tool_use", f"ls {turn}", turn)]})
        history.append({"role": "user", "content": [block("tool_result", "x" * 20_000, turn)]})
        move_marker(history)
        (request, _), recall = decoded_with(store, body(history))
        assert request == decode_request(body(history))[0]
        if previous is not None:
            # Every message before the last request's marked one is the very object again.
            assert recall.same == len(history) - 3
            assert all(a is b for a, b in zip(request.messages[:-4], previous.messages[:-4]))  # noqa: B905
        previous = request
    assert store.hits >= sum(2 * t for t in range(1, 30))


def test_a_bad_new_message_is_the_same_error_as_without_memory() -> None:
    store = Conversations()
    history: list[dict[str, Any]] = [{"role": "user", "content": "start"},
                                     {"role": "assistant", "content": [block("tool_use", "ls", 1)]},
                                     {"role": "user", "content": [block("tool_result", "ok", 1)]}]
    decoded_with(store, body(history))
    for bad in ({"role": "user", "content": 7}, {"role": "robot", "content": "x"},
                {"role": "user", "content": [{"text": "no type"}]}, "not an object"):
        data = body([*history, bad])  # type: ignore[list-item]
        with pytest.raises(RequestError) as resumed:
            decoded_with(store, data)
        with pytest.raises(RequestError) as whole:
            decode_request(data)
        assert resumed.value.message == whole.value.message and "messages.3" in whole.value.message
    # The failed requests cost the conversation nothing: the next good one resumes after all three.
    (_, _), recall = decoded_with(store, body([*history, {"role": "assistant", "content": "done"}]))
    assert recall.same == 3
