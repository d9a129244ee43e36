"""The Responses decoder resumed from a conversation's memory decodes exactly what the whole decode
does (``client_decode_history.History.resume``): random sessions of every item kind the walk
folds (steps of reasoning, text and calls; outputs; client-run tool searches that load tools;
the gateway's web searches; dropped items and parts), each next request the last one with items
added, an earlier item edited or the history cut, as Codex sends them; a chained request
(``previous_response_id``) read with the memory decodes as it does without."""

from __future__ import annotations

import copy
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.conversation import Conversations, Recall
from pipeline.errors import RequestError
from pipeline.protocols.responses.client_decode import decode_read, decode_request, read_request

TEXT = st.text(alphabet="ab \n\"\\é", max_size=10)


def item(kind: str, text: str, n: int) -> dict[str, Any]:
    return {
        "user": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]},
        "user_str": {"role": "user", "content": text},
        "developer": {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": text}]},
        "assistant": {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}],
                      "phase": "commentary" if n % 2 else None},
        "reasoning": {"type": "reasoning", "summary": [{"type": "summary_text", "text": text}],
                      "encrypted_content": f"env{n}"},
        "call": {"type": "function_call", "call_id": f"call_{n}", "name": "shell", "arguments": f'{{"c":"{n}"}}'},
        "custom": {"type": "custom_tool_call", "call_id": f"call_{n}", "name": "apply_patch", "input": text},
        "output": {"type": "function_call_output", "call_id": f"call_{n}", "output": text},
        "custom_output": {"type": "custom_tool_call_output", "call_id": f"call_{n}",
                          "output": [{"type": "input_text", "text": text}, {"type": "input_file"}]},
        "search": {"type": "tool_search_call", "call_id": f"ts_{n}", "execution": "client",
                   "arguments": {"query": text}},
        "search_output": {"type": "tool_search_output", "call_id": f"ts_{n}", "execution": "client",
                          "status": "completed",
                          "tools": [{"type": "function", "name": f"loaded_{n % 3}", "parameters": {}},
                                    {"type": "web_search"}]},
        "web": {"type": "web_search_call", "id": f"ws_{n}", "status": "completed",
                "action": {"type": "search", "query": text}},
        "dropped": {"type": "image_generation_call", "id": f"ig_{n}"},
    }[kind]


KINDS = ("user", "user_str", "developer", "assistant", "reasoning", "reasoning", "call", "call", "custom",
         "output", "output", "custom_output", "search", "search_output", "web", "dropped")


@st.composite
def items(draw: st.DrawFn, min_size: int = 0, max_size: int = 4) -> list[dict[str, Any]]:
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=min_size, max_size=max_size))
    return [item(k, draw(TEXT), draw(st.integers(0, 4))) for k in kinds]


def body(history: list[dict[str, Any]], **more: Any) -> bytes:
    return msgspec.json.encode({"model": "gpt-5.5-codex", "instructions": "be brief", "input": history,
                                "tools": [{"type": "function", "name": "shell", "parameters": {}}],
                                "reasoning": {"effort": "high", "summary": "auto"}, "store": False,
                                "stream": True, **more})


def decoded_with(store: Conversations, data: bytes) -> tuple[Any, Recall]:
    recall = store.recall("scope")
    return decode_request(data, recall), recall


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=items(min_size=1, max_size=8), steps=st.lists(
    st.tuples(st.sampled_from(("extend", "extend", "edit", "truncate", "same")), items(),
              st.integers(0, 20)), min_size=1, max_size=4))
def test_a_resumed_decode_equals_the_whole_one(first: list[dict[str, Any]], steps: list[Any]) -> None:
    store = Conversations()
    history = copy.deepcopy(first)
    decoded_with(store, body(history))
    for op, added, at in steps:
        history = copy.deepcopy(history)
        if op == "extend":
            history.extend(added)
        elif op == "edit" and added:
            history[at % len(history)] = added[0]
        elif op == "truncate" and len(history) > 1:
            del history[max(1, at % len(history)):]
        data = body(history)
        (resumed, echo), _ = decoded_with(store, data)
        whole, whole_echo = decode_request(data)
        assert resumed == whole and echo == whole_echo
        assert resumed.losses == whole.losses  # in order, with their paths
        assert resumed.server_tools == whole.server_tools and resumed.tools == whole.tools


def test_a_session_decodes_only_its_new_items_and_hands_back_the_same_messages() -> None:
    store = Conversations()
    history: list[dict[str, Any]] = [item("developer", "rules", 0), item("user", "start", 0)]
    previous = None
    for turn in range(30):
        # Codex only appends: reasoning, then a call, then (next request) its output.
        history += [item("reasoning", f"why {turn}", turn), item("call", "", turn)]
        (request, _), recall = decoded_with(store, body(history))
        assert request == decode_request(body(history))[0]
        if previous is not None:
            assert recall.same == len(history) - 3
            # Every message is the very object of the last request's, its last step (open at
            # the end of the last body, flushed by the output) included; only the new ones are new.
            assert len(request.messages) == len(previous.messages) + 2
            assert all(a is b for a, b in zip(request.messages, previous.messages))  # noqa: B905
        previous = request
        history.append(item("output", "x" * 20_000, turn))
    assert store.hits >= sum(3 * t for t in range(1, 30))


def test_a_step_the_new_items_extend_is_not_the_remembered_message() -> None:
    store = Conversations()
    history = [item("user", "start", 0), item("reasoning", "why", 1), item("call", "", 1)]
    (first, _), _ = decoded_with(store, body(history))
    history.append(item("call", "", 2))  # a parallel call: the same step, one call more
    (second, _), recall = decoded_with(store, body(history))
    assert recall.same == 3 and second == decode_request(body(history))[0]
    assert second.messages[0] is first.messages[0] and second.messages[-1] is not first.messages[-1]
    assert len(second.messages[-1].parts) == 3


def test_a_chained_request_read_with_the_memory_decodes_as_without() -> None:
    store = Conversations()
    history = [item("user", "start", 0), item("reasoning", "why", 1), item("call", "", 1)]
    decoded_with(store, body(history))
    history.append(item("output", "ok", 1))
    # The same head and leading items, then previous_response_id after the input array.
    data = body(history, previous_response_id="resp_1")
    prior = [msgspec.Raw(msgspec.json.encode(item("user", "stored", 9)))]
    recall = store.recall("scope")
    read = read_request(data, recall)
    assert read.same == 3
    chained = decode_read(read, prior, recall)
    assert chained == decode_read(read_request(data, Recall()), prior)
    assert read.input(recall) == read_request(data, Recall()).wire.input


def test_a_bad_new_item_is_the_same_error_as_without_memory() -> None:
    store = Conversations()
    history = [item("user", "start", 0), item("call", "", 1), item("output", "ok", 1)]
    decoded_with(store, body(history))
    for bad in ({"type": "function_call_output", "output": "no call id"}, {"type": "message", "role": "robot",
                "content": "x"}, {"content": "no type nor role"}, "not an object"):
        data = body([*history, bad])  # type: ignore[list-item]
        with pytest.raises(RequestError) as resumed:
            decoded_with(store, data)
        with pytest.raises(RequestError) as whole:
            decode_request(data)
        assert resumed.value.message == whole.value.message and "input.3" in whole.value.message
    (_, _), recall = decoded_with(store, body([*history, item("assistant", "done", 2)]))
    assert recall.same == 3
