"""The durable reasoning ledger (stages/thinking_filter/ledger.py) through the stage, on a real
store (SQLite, reopened: what a restarted or other replica sees): a tool turn's reasoning is
queued for the store by call id and by the turn's digest, and a later request that stripped the
thinking block gets it back by the call id, or, when its ids were renamed (a compacted history),
by the calls themselves; other calls, another upstream or a dead store do not."""

from __future__ import annotations

from pathlib import Path

import msgspec

from pipeline.events import BlockStart, BlockStop, MessageStart, MessageStop, ThinkingDelta, ToolArgsDelta
from pipeline.model import ChatRequest, Message, TextPart, ToolCallPart, ToolResultPart
from pipeline.profiles import PROFILES
from pipeline.store.redis import RedisStore
from pipeline.store.sqlite import SqliteStore
from pipeline.testing import make_attempt, make_context, run_stage
from stages.thinking_filter import ThinkingFilter, reset_shared_state
from stages.thinking_filter.ledger import canonical, turn_key

REASONING = "I will run the two commands; ünïcode \u2028 and all."


def stage(**options) -> ThinkingFilter:
    return ThinkingFilter(msgspec.convert(options, type=ThinkingFilter.Config), stage_id="t.0.thinking_filter")


def ctx_with(store, upstream_id: str = "deepseek"):
    ctx = make_context(client="anthropic")
    ctx.aim(make_attempt(PROFILES["deepseek"], upstream_id=upstream_id))
    ctx.store = store
    return ctx


def turn() -> list:
    return [MessageStart(message_id="m1", model="deepseek-v4-pro"), BlockStart(index=0, block="thinking"),
            ThinkingDelta(index=0, text=REASONING), BlockStop(index=0),
            BlockStart(index=1, block="tool_call", call_id="call_a", name="Bash"),
            ToolArgsDelta(index=1, fragment='{"command": '), ToolArgsDelta(index=1, fragment='"ls", "n": 1}'),
            BlockStop(index=1),
            BlockStart(index=2, block="tool_call", call_id="call_b", name="Read"),
            ToolArgsDelta(index=2, fragment='{"path":"a.txt"}'), BlockStop(index=2),
            MessageStop(stop_reason="tool_use")]


def stripped(ids: tuple[str, str] = ("call_a", "call_b"), command: str = '{"n":1,"command":"ls"}') -> ChatRequest:
    """The turn as a client resends it without its thinking block (arguments re-serialized)."""
    return ChatRequest(model="claude-opus-5-5", messages=(
        Message(role="user", parts=(TextPart("go"),)),
        Message(role="assistant", parts=(ToolCallPart(id=ids[0], name="Bash", arguments=command),
                                         ToolCallPart(id=ids[1], name="Read", arguments='{"path": "a.txt"}'))),
        Message(role="tool", parts=(ToolResultPart(call_id=ids[0], content=(TextPart("x"),)),
                                    ToolResultPart(call_id=ids[1], content=(TextPart("y"),)))),
    ))


async def written(tmp_path: Path) -> Path:
    """A tool turn through one stage; its queued writes made to a SQLite file, which is closed."""
    path = tmp_path / "store.sqlite3"
    store = SqliteStore(path)
    await store.open()
    ctx = ctx_with(store)
    await run_stage(stage(), turn(), ctx=ctx)
    keys = [key for key, _, _ in ctx.store_writes]
    assert keys[:2] == ["ledger:deepseek:call:call_a", "ledger:deepseek:call:call_b"] and len(keys) == 3
    assert all(value == REASONING.encode() and ttl == 7 * 86400 for _, value, ttl in ctx.store_writes)
    for key, value, ttl in ctx.store_writes:
        await store.put(key, value, ttl)
    await store.aclose()
    return path


async def replayed(path: Path, request: ChatRequest, upstream_id: str = "deepseek") -> tuple[str | None, str]:
    """What a new process (nothing shared in memory) replays for ``request``, and the rung."""
    reset_shared_state()
    store = SqliteStore(path)
    await store.open()
    ctx = ctx_with(store, upstream_id)
    try:
        out = await stage().on_request(request, ctx)
    finally:
        await store.aclose()
    return out.messages[1].reasoning, ctx.fields["replay_rung"]


async def test_by_call_id_in_another_process(tmp_path: Path) -> None:
    path = await written(tmp_path)
    assert await replayed(path, stripped()) == (REASONING, "ledger")


async def test_by_the_turn_when_the_ids_were_renamed(tmp_path: Path) -> None:
    path = await written(tmp_path)
    assert await replayed(path, stripped(ids=("toolu_1", "toolu_2"))) == (REASONING, "ledger")


async def test_other_calls_or_upstream_are_not_found(tmp_path: Path) -> None:
    path = await written(tmp_path)
    assert await replayed(path, stripped(ids=("toolu_1", "toolu_2"), command='{"command":"rm"}')) == (None, "empty")
    assert await replayed(path, stripped(), upstream_id="other") == (None, "empty")


async def test_off_or_without_a_store_nothing_is_queued() -> None:
    for st, store in ((stage(ledger=False), object()), (stage(), None)):
        ctx = ctx_with(store)
        await run_stage(st, turn(), ctx=ctx)
        assert ctx.store_writes == []


async def test_a_dead_store_is_a_miss_not_a_failure() -> None:
    from tests.redis_server import free_port

    ctx = ctx_with(RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout_s=1))
    out = await stage().on_request(stripped(), ctx)
    assert out.messages[1].reasoning is None and ctx.fields["replay_rung"] == "empty"


def test_the_digest_ignores_how_the_arguments_are_spelled() -> None:
    assert canonical('{"b": 1, "a": [1, 2]}') == canonical('{"a":[1,2],"b":1}') == b'{"a":[1,2],"b":1}'
    assert canonical("not json") == b"not json"
    assert turn_key("u", [("Bash", '{"a": 1}')]) == turn_key("u", [("Bash", '{"a":1}')])
    assert turn_key("u", [("Bash", '{"a": 1}')]) != turn_key("u", [("Read", '{"a": 1}')])
