"""Stored Responses end to end, embedded store: the official ``openai`` SDK chains a tool loop of
dozens of turns by ``previous_response_id`` (only the new tool outputs sent each turn, ~1 MB of
stored items by the end) through one gateway process, restarted in the middle on the same SQLite
data directory, to the simulator server verifying every replayed reasoning text
(``verify_replay``). Then ``retrieve``, ``input_items.list``, ``delete`` as the SDK calls them,
the 404 / 400 of an id that is gone, ``store: false`` writing nothing, and retention. And the
gateway as users run it, one process on the default embedded store, killed mid-conversation and
started again: a Responses chain and a Claude Code-shaped loop that strips its thinking blocks
(the reasoning ledger) go on, every replayed reasoning exact."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import openai
import pytest
import trio

from stages.thinking_filter import reset_shared_state
from tests.e2e.messages_loop import stripped_loop
from tests.e2e.replicas import SECRET, pipeline
from tests.e2e.serving import SIM, open_gateway
from tests.e2e.stored_loop import TOOLS, chained_loop, chained_turn, script
from tests.resilience.gateway_process import open_gateway_process

CONFIG = """
store: {backend: sqlite, data_dir: '%s'%s}
upstreams:
  sim: {%s}
pipelines:
  agents:
    client: responses
    stages: [thinking_filter, token_budget, tool_ids]
    upstream: sim
"""
TURNS = 36
OUTPUT = 30_000  # characters per tool output: ~1 MB of history by the last turn


def config(data: Path, extra: str = "") -> str:
    return CONFIG % (data, extra, SIM)


class TestEmbeddedStore:
    async def test_chain_survives_a_restart(self, sim, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        sim.reset(verify_replay=True)
        monkeypatch.setenv("GATEWAY_THINKING_SECRET", "one secret for the process before and after")
        prompt = [{"role": "user", "content": script(TURNS)}]
        async with open_gateway(config(tmp_path), sim=sim) as (url, _):
            before, items = await trio.to_thread.run_sync(
                lambda: chained_loop(lambda k: f"{url}/v1", range(TURNS // 2), prompt, output_size=OUTPUT))
        reset_shared_state()  # a new process: no reasoning cache, nothing the old one held
        async with open_gateway(config(tmp_path), sim=sim) as (url, _):
            after, _ = await trio.to_thread.run_sync(
                lambda: chained_loop(lambda k: f"{url}/v1", range(TURNS // 2, TURNS + 1), items, before[-1].id,
                                     output_size=OUTPUT))
            last = after[-1]
            client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
            got = await trio.to_thread.run_sync(lambda: client.responses.retrieve(last.id))
            page = await trio.to_thread.run_sync(lambda: client.responses.input_items.list(last.id, limit=100))
            listed = await trio.to_thread.run_sync(
                lambda: list(client.responses.input_items.list(last.id, order="asc", limit=7)))
            middle = after[0]
            await trio.to_thread.run_sync(lambda: client.responses.delete(middle.id))
            with pytest.raises(openai.NotFoundError, match="not found"):
                await trio.to_thread.run_sync(lambda: client.responses.retrieve(middle.id))
            with pytest.raises(openai.NotFoundError):
                await trio.to_thread.run_sync(lambda: client.responses.delete(middle.id))
            with pytest.raises(openai.NotFoundError, match="has expired or was deleted"):
                await trio.to_thread.run_sync(lambda: client.responses.input_items.list(last.id))
            with pytest.raises(openai.BadRequestError, match="previous_response_id"):
                await trio.to_thread.run_sync(lambda: chained_turn(client, [], last.id, stream=False))
        responses = before + after
        assert len(responses) == TURNS + 1 and responses[-1].output_text == "all done"
        assert [r.previous_response_id for r in responses[1:]] == [r.id for r in responses[:-1]]
        stats = sim.stats()
        # Every call came back with its reasoning, checked byte for byte; the last turn's history
        # had all of them.
        assert stats["emitted_calls"] == stats["verified_calls"] == TURNS
        assert stats["replay"][-1]["verified_turns"] == TURNS
        assert stats["max_request_bytes"] > 1_000_000
        assert got.id == last.id and got.output_text == "all done" and got.status == "completed"
        # The last turn's input: the prompt, every turn's reasoning, call and output: newest first.
        assert len(page.data) == 100 and page.has_more
        assert page.data[0].type == "function_call_output" and page.data[0].call_id
        # The prompt, then each turn's reasoning, preamble, call, and the tool's output.
        assert [i.type for i in listed[:5]] == ["message", "reasoning", "message", "function_call",
                                                "function_call_output"]
        assert len(listed) == 1 + 4 * TURNS  # every page followed by ``after``
        assert len({i.id for i in listed}) == len(listed)
        reasoning = listed[1]
        assert reasoning.encrypted_content.startswith("gw2.")  # the envelope is what was stored

    async def test_store_false_writes_nothing(self, sim, tmp_path: Path) -> None:
        async with open_gateway(config(tmp_path), sim=sim) as (url, _):
            client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
            kept = await trio.to_thread.run_sync(lambda: client.responses.create(
                model="deepseek-v4-pro", input="SIM:text kept"))
            codex = await trio.to_thread.run_sync(lambda: client.responses.create(
                model="deepseek-v4-pro", input="SIM:text not kept", store=False))
            assert (await trio.to_thread.run_sync(lambda: client.responses.retrieve(kept.id))).output_text == "kept"
            with pytest.raises(openai.NotFoundError):
                await trio.to_thread.run_sync(lambda: client.responses.retrieve(codex.id))
            with pytest.raises(openai.BadRequestError, match="not found"):
                await trio.to_thread.run_sync(lambda: client.responses.create(
                    model="deepseek-v4-pro", input="SIM:text x", previous_response_id=codex.id, tools=TOOLS))

    async def test_retention(self, sim, tmp_path: Path) -> None:
        async with open_gateway(config(tmp_path, ", responses_ttl_s: 0.5"), sim=sim) as (url, _):
            client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
            first = await trio.to_thread.run_sync(lambda: client.responses.create(
                model="deepseek-v4-pro", input="SIM:text one"))
            second = await trio.to_thread.run_sync(lambda: client.responses.create(
                model="deepseek-v4-pro", input="SIM:text two", previous_response_id=first.id))
            assert second.output_text == "two"
            await trio.sleep(0.6)
            with pytest.raises(openai.NotFoundError):
                await trio.to_thread.run_sync(lambda: client.responses.retrieve(first.id))


PROCESS = "store: {data_dir: '%s'}\nupstreams:\n  sim: {%s}\npipelines:\n%s%s"


def test_one_process_killed_and_restarted(sim, tmp_path: Path) -> None:
    sim.reset(verify_replay=True)
    config = PROCESS % (tmp_path / "data", SIM, pipeline("agents", "responses"), pipeline("claude", "anthropic"))
    env = {**SECRET, "SIM_URL": sim.url}
    turns, size = 16, 32_000
    with ExitStack() as stack:
        (tmp_path / "a").mkdir()
        gateway = stack.enter_context(open_gateway_process(tmp_path / "a", config, env))
        url = gateway.url
        chained, items = chained_loop(lambda k: f"{url}/v1", range(turns // 2), [
            {"role": "user", "content": script(turns)}], output_size=size)
        script_text = "SIM:script " + " ;; ".join([f"shell echo {i}" for i in range(turns)] + ["text all done"])
        replies, messages = stripped_loop(lambda k: url, range(turns // 2), [{"role": "user", "content": script_text}],
                                          size)
        gateway.proc.kill()  # no shutdown: what was answered is on disk
        gateway.proc.wait(10)
        (tmp_path / "b").mkdir()
        url = stack.enter_context(open_gateway_process(tmp_path / "b", config, env)).url
        more, _ = chained_loop(lambda k: f"{url}/v1", range(turns // 2, turns + 1), items, chained[-1].id,
                               output_size=size)
        rest, _ = stripped_loop(lambda k: url, range(turns // 2, turns + 1), messages, size)
    assert (chained + more)[-1].output_text == "all done" and len(chained + more) == turns + 1
    assert (replies + rest)[-1].content[-1].text == "all done" and len(replies + rest) == turns + 1
    stats = sim.stats()
    assert stats["emitted_calls"] == stats["verified_calls"] == 2 * turns
    assert stats["max_request_bytes"] > 500_000
