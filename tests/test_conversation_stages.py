"""The request stages with the conversation memory give what they give without it.

``thinking_filter`` and ``tool_ids`` reuse, for a session's next request, what they made of the
leading messages of its last one (``pipeline.conversation``). Random sessions, decoded by the real
Anthropic decoder (which hands back the very same messages for unchanged items), are shaped
twice per request: with one memory across the session, and with none. Every request must leave
the stages equal, field for field, with the same losses in the same order, the same log fields
(``replay_rung``, ``replay_turns`` in the same order) and the same ``ToolMap``; the session
mixes own, foreign, other-upstream, moved and copied envelopes, unpaired results, names and ids
the upstream rejects, edited earlier turns, thinking toggled, another upstream and a fallback
attempt. And the reuse must really happen (counted) and hand on the very same messages.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.conversation import Conversations, Recall
from pipeline.model import ResponseFormat, ServerTool, ToolCallPart
from pipeline.profiles import PROFILES
from pipeline.protocols.anthropic.client_decode import decode_request
from pipeline.testing import make_attempt, make_context
from stages.thinking_filter import ThinkingFilter
from stages.thinking_filter.envelope import Envelope, Keyring
from stages.structured_output import StructuredOutput
from stages.tool_ids import ToolIdMap
from stages.web_search import WebSearch

SECRET = "conversation-stages-secret"
KINDS = ("own", "own", "own", "other", "foreign", "none", "moved", "copy", "ahead")
NAMES = ("Bash", "Bash", "mcp__srv.do/it", "mcp__srv_do_it")  # the last takes the second's sanitised form
RESULTS = ("paired", "paired", "paired", "missing", "stray")


@pytest.fixture(autouse=True)
def secret(monkeypatch) -> None:
    monkeypatch.setenv("GATEWAY_THINKING_SECRET", SECRET)


def seal(upstream_id: str, text: str, calls: tuple[str, ...]) -> str:
    return Keyring(SECRET.encode()).upstream(upstream_id).seal(Envelope(u=upstream_id, m="m", r=text, t=calls))


def turn_blocks(t: int, kind: str, calls: int, odd: bool, prev: dict | None,
                name: str = "Bash") -> tuple[dict, list[dict]]:
    """Assistant turn ``t`` (its thinking block of ``kind``; ``odd``: its first call id is one the
    upstream rejects) and the user turn of its results. ``moved``: an envelope sealed for the
    turn before's calls; ``copy``: that turn's block again; ``ahead``: on a turn without calls, an
    envelope sealed for a call the history does not have (yet: the next turn's first)."""
    if kind == "ahead":
        calls = 0
    ids = tuple(f"toolu.{t}.{k}" if odd and k == 0 else f"toolu_{t}_{k}" for k in range(calls))
    reasoning = f"reasoning of turn {t}"
    thinking: dict | None = None
    if kind == "ahead":
        thinking = {"type": "thinking", "thinking": "shown", "signature": seal("deepseek", reasoning,
                                                                              (f"toolu_{t + 1}_0",))}
    elif kind == "own":
        thinking = {"type": "thinking", "thinking": "shown", "signature": seal("deepseek", reasoning, ids)}
    elif kind == "other":
        thinking = {"type": "thinking", "thinking": "shown", "signature": seal("other", reasoning, ids)}
    elif kind == "foreign":
        thinking = {"type": "thinking", "thinking": "shown", "signature": f"EqQBforeign{t}"}
    elif kind in ("moved", "copy") and prev is not None:
        thinking = prev["thinking"] if kind == "copy" else {
            "type": "thinking", "thinking": "shown", "signature": seal("deepseek", reasoning, prev["ids"])}
    content = ([thinking] if thinking else []) + [{"type": "text", "text": f"turn {t}"}] + [
        {"type": "tool_use", "id": i, "name": name, "input": {"command": f"echo {t}"}} for i in ids]
    return {"content": content, "ids": ids, "thinking": thinking}, [
        {"type": "tool_result", "tool_use_id": i, "content": f"out {t}"} for i in ids]


@st.composite
def sessions(draw: Any) -> tuple[list[tuple[dict, list[dict]]], list[tuple[str, int]]]:
    n = draw(st.integers(2, 10))
    turns, prev = [], None
    for t in range(n):
        kind = draw(st.sampled_from(KINDS))
        assistant, results = turn_blocks(t, kind, draw(st.integers(0, 2)), draw(st.booleans()), prev,
                                         draw(st.sampled_from(NAMES)))
        shape = draw(st.sampled_from(RESULTS))
        if shape == "missing" and results:
            results = results[1:]
        elif shape == "stray":
            results = [*results, {"type": "tool_result", "tool_use_id": f"toolu_stray_{t}", "content": "?"}]
        turns.append((assistant, results or [{"type": "text", "text": "go on"}]))
        prev = assistant
    steps = draw(st.lists(st.tuples(st.sampled_from(("grow",) * 6 + ("edit", "toggle", "upstream", "fallback",
                                                                    "keep")), st.integers(0, n - 1)),
                          min_size=n, max_size=n + 4))
    return turns, steps


def body(turns: list[tuple[dict, list[dict]]], k: int, thinking: bool, edited: set[int]) -> bytes:
    messages: list[dict] = [{"role": "user", "content": "start"}]
    for t, (assistant, results) in enumerate(turns[:k]):
        messages.append({"role": "assistant", "content": assistant["content"]})
        if t in edited:
            results = [{**r, "content": "edited"} if r["type"] == "tool_result" else r for r in results]
        messages.append({"role": "user", "content": results})
    return json.dumps({"model": "claude-opus-4-7", "max_tokens": 2000, "messages": messages, "stream": True,
                       "thinking": {"type": "enabled" if thinking else "disabled", "budget_tokens": 1024},
                       "tools": [{"name": "Bash", "input_schema": {"type": "object"}}]}).encode()


async def shape(stages: tuple[ThinkingFilter, ToolIdMap], data: bytes, recall: Recall,
                aims: list[tuple[str, str]]) -> list[tuple[Any, ...]]:
    """Decode ``data`` with ``recall`` and shape it for each attempt of ``aims`` (upstream id,
    profile; more than one: a fallback, shaped afresh from the decoded request)."""
    request, _ = decode_request(data, recall)
    out = []
    for upstream_id, profile in aims:
        ctx = make_context(client="anthropic")
        ctx.recall = recall
        ctx.aim(make_attempt(PROFILES[profile], upstream_id=upstream_id, model="deepseek-v4-pro"))
        shaped = request
        for stage in stages:
            shaped = await stage.on_request(shaped, ctx)
        fields = {k: list(v.items()) if isinstance(v, dict) else v for k, v in ctx.fields.items()}
        out.append((shaped, list(ctx.losses), list(fields.items()), ctx.state[stages[1].id]))
    return out


def pair() -> tuple[ThinkingFilter, ToolIdMap]:
    return (ThinkingFilter(ThinkingFilter.Config(ledger=False), stage_id="p.0.thinking_filter"),
            ToolIdMap(ToolIdMap.Config(), stage_id="p.2.tool_ids"))


def replay(turns: list[tuple[dict, list[dict]]], steps: list[tuple[str, int]]) -> tuple[ThinkingFilter, ToolIdMap]:
    """Play ``steps`` (``grow``: one tool turn more; ``edit``: change a turn's results; ``toggle``
    thinking; another ``upstream``; a ``fallback`` attempt before this one; ``keep``: the same
    request again) with the memory and without; each request must come out alike. The stages
    that remembered (their ``reused`` counts)."""
    remembering, forgetting = pair(), pair()
    memory = Conversations()

    async def run() -> None:
        k, thinking, upstream, edited = 1, True, ("deepseek", "deepseek"), set()
        for step, at in steps:
            aims = [upstream]
            if step == "grow":
                k = min(k + 1, len(turns))
            elif step == "edit":
                edited.add(min(at, k - 1))
            elif step == "toggle":
                thinking = not thinking
            elif step == "upstream":
                upstream = ("other", "anthropic") if upstream[0] == "deepseek" else ("deepseek", "deepseek")
                aims = [upstream]
            elif step == "fallback":
                aims = [("other", "anthropic"), upstream]
            data = body(turns, k, thinking, edited)
            with_memory = await shape(remembering, data, memory.recall("scope"), aims)
            without = await shape(forgetting, data, Recall(), aims)
            assert with_memory == without, (step, k)

    trio.run(run)
    return remembering


def session_of(kinds: list[str], names: list[str] | None = None, calls: int = 1) -> list[tuple[dict, list[dict]]]:
    turns, prev = [], None
    for t, kind in enumerate(kinds):
        assistant, results = turn_blocks(t, kind, calls, False, prev, (names or ["Bash"] * len(kinds))[t])
        turns.append((assistant, results or [{"type": "text", "text": "go on"}]))
        prev = assistant
    return turns


GROW = [("grow", 0)] * 8


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sessions())
def test_with_and_without_memory_alike(session) -> None:
    replay(*session)


def test_a_new_turns_envelope_moved_onto_a_remembered_turn() -> None:
    """Turn 2 carries an envelope sealed for turn 1's calls: it restores turn 1, which the memory
    had; that turn is shaped again (and the request before it, without turn 2, is unchanged)."""
    stages = replay(session_of(["own", "own", "moved", "own"]), GROW)
    assert stages[0].reused > 0


def test_an_envelope_bound_by_calls_the_history_gains_later() -> None:
    """An envelope sealed for a call the history does not hold restores its own turn; once the
    next turn brings that call it no longer does: the remembered turn is not reused."""
    replay(session_of(["own", "ahead", "own", "own"]), GROW)


def test_a_new_name_that_changes_how_an_earlier_one_maps() -> None:
    """A later tool named like an earlier name's sanitised form takes that form: the earlier
    calls map to another name, so no remembered message is reused."""
    replay(session_of(["own"] * 5, ["mcp__srv.do/it", "Bash", "mcp__srv_do_it", "Bash", "Bash"]), GROW)


def test_thinking_toggled_another_upstream_and_a_fallback() -> None:
    steps = [("grow", 0), ("grow", 0), ("toggle", 0), ("grow", 0), ("toggle", 0), ("upstream", 0), ("grow", 0),
             ("upstream", 0), ("fallback", 0), ("grow", 0), ("keep", 0), ("edit", 1), ("grow", 0)]
    stages = replay(session_of(["own"] * 8), steps)
    assert stages[0].reused > 0 and stages[1].reused > 0


def test_a_sessions_next_request_reuses_the_turns_and_hands_on_the_same_messages() -> None:
    """Twelve tool turns, each request one longer: from the second on, thinking_filter and
    tool_ids reuse every remembered message and hand the encoder the very same objects."""
    turns, prev = [], None
    for t in range(12):
        assistant, results = turn_blocks(t, "own", 1 + t % 2, t % 3 == 0, prev)
        turns.append((assistant, results))
        prev = assistant
    stages, bare = pair(), pair()
    memory = Conversations()

    async def run() -> None:
        last = None
        for k in range(1, len(turns) + 1):
            data = body(turns, k, True, set())
            [(shaped, *rest)] = await shape(stages, data, memory.recall("scope"), [("deepseek", "deepseek")])
            [(alone, *rest_alone)] = await shape(bare, data, Recall(), [("deepseek", "deepseek")])
            assert (shaped, rest) == (alone, rest_alone)
            assert dict(rest[1])["replay_rung"] == "envelope"
            if last is not None:
                kept = len(last.messages)
                assert all(a is b for a, b in zip(shaped.messages[:kept], last.messages, strict=True))
                assert shaped.messages[1].reasoning == "reasoning of turn 0"
            last = shaped

    trio.run(run)
    # Request k reuses the 2k - 1 messages of request k - 1 (the first user turn, then an
    # assistant turn and its results per tool turn, a turn's results one tool message per call).
    assert stages[0].reused > 0 and stages[1].reused > 0
    assert bare[0].reused == 0 and bare[1].reused == 0
    sizes = [1 + sum(1 + len(a["ids"]) for a, _ in turns[:k]) for k in range(1, len(turns))]
    assert stages[0].reused == sum(sizes)
    assert stages[1].reused == sum(sizes)


def test_an_edited_turn_is_shaped_again() -> None:
    """A changed earlier turn: its message is decoded anew, so neither stage reuses it or what follows."""
    turns, prev = [], None
    for t in range(6):
        assistant, results = turn_blocks(t, "own", 1, False, prev)
        turns.append((assistant, results))
        prev = assistant
    stages = pair()
    memory = Conversations()

    async def run() -> None:
        await shape(stages, body(turns, 6, True, set()), memory.recall("s"), [("deepseek", "deepseek")])
        before = stages[0].reused, stages[1].reused
        [(shaped, *_)] = await shape(stages, body(turns, 6, True, {1}), memory.recall("s"), [("deepseek", "deepseek")])
        # messages: user, then (assistant, tool) per turn: turn 1's result is message 4.
        assert stages[0].reused - before[0] == 4
        assert stages[1].reused == before[1]  # tool_ids reuses only a request that extends the last
        assert shaped.messages[4].parts[0].content[0].text == "edited"

    trio.run(run)


def test_a_memo_of_another_upstream_is_not_used() -> None:
    turns = [turn_blocks(t, "own", 1, False, None) for t in range(4)]
    stages = pair()
    memory = Conversations()

    async def run() -> None:
        await shape(stages, body(turns, 3, True, set()), memory.recall("s"), [("deepseek", "deepseek")])
        [(shaped, losses, *_)] = await shape(stages, body(turns, 4, True, set()), memory.recall("s"),
                                             [("other", "deepseek")])
        assert stages[0].reused == 0
        assert all(m.reasoning is None for m in shaped.messages)
        assert [loss.what for loss in losses].count("foreign_thinking") == 4

    trio.run(run)


def test_stages_with_nothing_to_do_to_a_message_hand_it_on_as_it_came() -> None:
    """structured_output and web_search (describe_images: its own tests) keep the very message
    objects they do not change, so the memory's identity reaches the upstream encoder."""
    request = decode_request(body(session_of(["own"] * 4), 4, True, set()))[0]
    search = ToolCallPart(id="toolu_s", name="web_search", arguments='{"query": "q"}')
    searched = msgspec.structs.replace(request.messages[1], parts=(*request.messages[1].parts, search))
    request = msgspec.structs.replace(
        request, messages=(request.messages[0], searched, *request.messages[2:]),
        server_tools=(ServerTool(kind="web_search_20250305", name="web_search"),),
        response_format=ResponseFormat(type="json_object"))
    web = WebSearch(WebSearch.Config(options={"base_url": "http://127.0.0.1:9"}, tool_name="search"), stage_id="w")
    structured = StructuredOutput(StructuredOutput.Config(), stage_id="s")

    async def run() -> None:
        ctx = make_context(client="anthropic")
        ctx.aim(make_attempt(PROFILES["deepseek"], upstream_id="deepseek"))
        shaped = await structured.on_request(request, ctx)
        assert shaped.messages == request.messages and shaped.system != request.system
        assert all(a is b for a, b in zip(shaped.messages, request.messages, strict=True))
        shaped = await web.on_request(shaped, ctx)
        assert shaped.messages[1].parts[-1].name == "search"  # the one message with the hosted name
        assert [a is b for a, b in zip(shaped.messages, request.messages, strict=True)] == [
            i != 1 for i in range(len(request.messages))]

    trio.run(run)
