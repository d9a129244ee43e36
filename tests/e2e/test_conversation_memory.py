"""The conversation memory changes nothing a backend receives, at the size of real work, end to end.

A Claude Code session (the official ``anthropic`` SDK → hypercorn → gateway → the production
transport → the strict simulator server): 36 tool turns with thinking on, 30 KB tool results
(the history passes 1 MB), Claude Code's system message inside ``messages[]`` and its cache marker
moved to the last message each turn, and what a real session also does now and then: an earlier
tool result edited, one request with thinking off, one to another model (Flash), one collected
(not streamed), a branch resent from an earlier turn. The client's bodies are recorded, then the
same bytes are sent again through the same gateway with its memory off: every body the simulator
received the second time equals the first time's, and the first run really was served from memory.
Codex's Responses session the same way (``codex_session``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import anthropic
import httpx
import httpx2  # the SDKs' own httpx fork (constraints.txt locks the SDKs that use it)
import openai
import trio

from pipeline.conversation import Conversations
from tests.e2e.serving import SIM, open_gateway

STAGES = "[thinking_filter, token_budget, tool_ids, structured_output]"
CONFIG = f"""
upstreams:
  sim: {{{SIM}}}
pipelines:
  claude: {{client: anthropic, upstream: sim, stages: {STAGES}}}
  codex: {{client: responses, upstream: sim, stages: {STAGES}, mount: /codex}}
"""
TURNS = 36
RESULT = "".join(f"{i:>6}\tline {i} of a file the agent read, long enough to be real\n" for i in range(500))  # ~30 KB
SCRIPT = "SIM:script " + " ;; ".join(f"shell cat part{i}.txt" for i in range(TURNS + 8)) + " ;; text done"
BASH = {"name": "Bash", "description": "Run a shell command",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}
CC = {"type": "ephemeral"}


def recorder() -> tuple[httpx2.Client, list[tuple[str, bytes]]]:
    """An httpx client for the SDK that records each request's path and body as sent."""
    sent: list[tuple[str, bytes]] = []
    return httpx2.Client(event_hooks={"request": [lambda r: sent.append((r.url.path, r.read()))]}), sent


def marked(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The history as Claude Code sends it: its cache marker on the last message's last block only."""
    out = copy.deepcopy(messages)
    last = out[-1]["content"]
    if isinstance(last, list):
        last[-1]["cache_control"] = CC
    return out


def claude_session(url: str) -> list[tuple[str, bytes]]:
    http, sent = recorder()
    client = anthropic.Anthropic(base_url=url, api_key="dummy", max_retries=0, http_client=http)
    history: list[dict[str, Any]] = [{"role": "user", "content": [{"type": "text", "text": SCRIPT + "\n" + "context " * 500}]},
                                     {"role": "system", "content": "Reminder: be brief."}]

    def ask(messages: list[dict[str, Any]], *, stream: bool = True, model: str = "claude-opus-4-7",
            thinking: bool = True) -> Any:
        options: dict[str, Any] = {"thinking": {"type": "enabled", "budget_tokens": 8000}} if thinking else {}
        kwargs = dict(model=model, max_tokens=32000, messages=marked(messages), tools=[BASH],
                      system=[{"type": "text", "text": "You are a coding agent."}], **options)
        if not stream:
            return client.messages.create(**kwargs, timeout=60)
        with client.messages.stream(**kwargs) as events:
            return events.get_final_message()

    for turn in range(TURNS):
        reply = ask(history, stream=turn != 12, model="claude-haiku-4-5" if turn == 20 else "claude-opus-4-7",
                    thinking=turn != 15)
        assert reply.stop_reason == "tool_use", reply
        calls = [b for b in reply.content if b.type == "tool_use"]
        history.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in reply.content]})
        history.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": c.id,
                                                      "content": f"{turn}\n{RESULT}"} for c in calls]})
        if turn == 10:  # an earlier tool result edited (a compaction of one result, say)
            history[5]["content"][0]["content"] = "shortened"
        if turn == 25:  # a branch: the history of some turns ago with another last result
            branch = copy.deepcopy(history[:-6])
            branch[-1]["content"][0]["content"] = "another outcome"
            ask(branch)
    assert sum(len(body) for _, body in sent[-1:]) > 1_000_000
    return sent


def codex_session(url: str) -> list[tuple[str, bytes]]:
    http, sent = recorder()
    client = openai.OpenAI(base_url=f"{url}/codex/v1", api_key="x", max_retries=0, http_client=http)
    tool = {"type": "function", "name": "exec_command", "description": "Run a command",
            "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}}
    items: list[dict[str, Any]] = [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "sandbox: none " * 200}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": SCRIPT}]}]
    for turn in range(TURNS):
        kwargs = dict(model="deepseek-v4-flash" if turn == 20 else "deepseek-v4-pro", input=items, tools=[tool],
                      store=False, include=["reasoning.encrypted_content"], instructions="You are Codex. " * 300,
                      reasoning={"effort": "low" if turn == 15 else "high", "summary": "auto"})
        if turn == 12:
            response = client.responses.create(**kwargs)
        else:
            with client.responses.stream(**kwargs) as events:
                for _ in events:
                    pass
                response = events.get_final_response()
        calls = [o for o in response.output if o.type == "function_call"]
        assert calls, response
        for out in response.output:
            item = out.model_dump(exclude_none=True)
            item.pop("id", None)
            item.pop("status", None)
            items.append(item)
        items += [{"type": "function_call_output", "call_id": c.call_id, "output": f"{turn}\n{RESULT}"} for c in calls]
        if turn == 10:
            items[5]["output"] = "shortened"
    assert len(sent[-1][1]) > 1_000_000
    return sent


async def same_with_memory_off(sim: Any, session: Callable[[str], list[tuple[str, bytes]]], shape: str) -> int:
    """Run ``session`` with the memory on, then its recorded bodies again with it off; the
    simulator's received bodies must be equal. Returns the history items served from memory."""
    async with open_gateway(CONFIG, sim=sim) as (url, gateway):
        sent = await trio.to_thread.run_sync(session, url)
        on = sim.requests(last=len(sent))
        hits = gateway.conversations.hits
        gateway.conversations = Conversations(max_bytes=0)
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            for path, body in sent:
                reply = await http.post(path, content=body, headers={"content-type": "application/json",
                                                                     "x-api-key": "dummy", "authorization": "Bearer x"})
                assert reply.status_code == 200, reply.text
        off = sim.requests(last=len(sent))
    assert len(on) == len(off) == len(sent)
    for i, (a, b) in enumerate(zip(on, off, strict=True)):
        assert a == b, f"{shape} request {i} differs with the memory on"
    return hits


async def test_a_claude_code_session_sends_the_same_with_memory_on_and_off(sim) -> None:
    hits = await same_with_memory_off(sim, claude_session, "Messages")
    assert hits > TURNS * TURNS // 2  # most requests resumed after most of their history


async def test_a_codex_session_sends_the_same_with_memory_on_and_off(sim) -> None:
    hits = await same_with_memory_off(sim, codex_session, "Responses")
    assert hits > TURNS * TURNS  # each request resumed after its history (~3 items a turn), but the edited one
