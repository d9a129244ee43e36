"""The request stages' share of the conversation memory end to end (``test_conversation_memory``
covers the decoders'): a real-size Claude Code session (the official ``anthropic``
SDK → hypercorn → the gateway → the simulator server, which checks every replayed reasoning,
``verify_replay``), and a Codex one (the official ``openai`` SDK, stateless Responses),
``verify_replay``), each request sent to a gateway that remembers conversations and to one that
does not (``conversation_memory_mb: 0``). The upstream must receive the same body from both, and
the log lines must say the same (losses, ``replay_rung``, ``replay_turns``), turn after turn, for
a session grown past 1 MB, an edited earlier tool result, an envelope moved to another turn and
a request with thinking off; the remembering gateway's stages must really have reused their
earlier work (counted), the other's never.
"""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import structlog
import trio

from tests.e2e.messages_loop import BASH
from tests.e2e.responses_loop import echoed, final_response
from tests.e2e.serving import SIM, open_gateway
from tests.resilience.dialects import finished_lines, wait_finished

CONFIG = """
server: {{conversation_memory_mb: {mb}}}
upstreams:
  sim: {{{sim}}}
pipelines:
  claude_code: {{client: anthropic, stages: [thinking_filter, token_budget, tool_ids], upstream: sim}}
  codex: {{client: responses, stages: [thinking_filter, token_budget, tool_ids], upstream: sim, mount: /codex}}
"""
STEPS = 26
OUTPUT = "x" * 40_000  # each tool result: ~1 MB of history by the last turn
SAME = ("losses", "replay_rung", "replay_turns", "status", "pipeline")


def send(url: str, messages: list[dict], thinking: bool = True) -> anthropic.types.Message:
    client = anthropic.Anthropic(base_url=url, api_key="dummy", max_retries=0)
    mode = {"type": "enabled", "budget_tokens": 8000} if thinking else {"type": "disabled"}
    with client.messages.stream(model="claude-opus-4-7", max_tokens=32000, messages=messages, tools=[BASH],
                                thinking=mode, system=[{"type": "text", "text": "You are a coding agent."}]) as stream:
        return stream.get_final_message()


def agreed(logs: list[dict], requests: int, remembering: Any, forgetting: Any, pipeline: str
           ) -> list[tuple[Any, Any]]:
    """The two gateways' log lines say the same, request by request; the session ended on every
    envelope replayed and had a request with thinking off; the remembering gateway's stages reused
    about every message of the request before (two per tool turn), the other's none. Returns each
    request's (``replay_rung``, ``replay_turns``)."""
    lines = finished_lines(logs)
    assert len(lines) == 2 * requests
    for a, b in zip(lines[::2], lines[1::2], strict=True):
        assert {k: a.get(k) for k in SAME} == {k: b.get(k) for k in SAME}
    rungs = [(line.get("replay_rung"), line.get("replay_turns")) for line in lines[::2]]
    assert rungs[-1] == ("envelope", {"envelope": STEPS})
    assert ("not_needed", None) in rungs[1:]  # thinking off
    stages = {s.name: s for s in remembering.pipelines[pipeline].request_stages}
    bare = {s.name: s for s in forgetting.pipelines[pipeline].request_stages}
    assert stages["thinking_filter"].reused > STEPS * (STEPS - 1) // 2
    assert stages["tool_ids"].reused > STEPS * (STEPS - 1) // 2
    assert bare["thinking_filter"].reused == 0 and bare["tool_ids"].reused == 0
    return rungs


def moved(messages: list[dict], at: int) -> list[dict]:
    """``messages`` with the thinking block of assistant turn ``at`` moved onto the next one."""
    turns = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    out = [dict(m) for m in messages]
    block = out[turns[at]]["content"][0]
    assert block["type"] == "thinking"
    out[turns[at]]["content"] = out[turns[at]]["content"][1:]
    out[turns[at + 1]]["content"] = [block, *out[turns[at + 1]]["content"][1:]]
    return out


def edited(messages: list[dict], at: int) -> list[dict]:
    out = [dict(m) for m in messages]
    out[at]["content"] = [{**b, "content": "edited"} for b in out[at]["content"]]
    return out


async def test_a_remembered_session_reaches_the_upstream_as_a_forgotten_one(sim, monkeypatch) -> None:
    monkeypatch.setenv("GATEWAY_THINKING_SECRET", "one-secret-for-both-gateways")
    sim.reset(verify_replay=True)
    script = "SIM:script " + " ;; ".join(f"shell echo step {k}" for k in range(STEPS)) + " ;; text finished"
    messages: list[dict] = [{"role": "user", "content": script}]
    async with open_gateway(CONFIG.format(mb=256, sim=SIM), sim=sim) as (on, remembering), \
            open_gateway(CONFIG.format(mb=0, sim=SIM), sim=sim) as (off, forgetting):

        async def both(history: list[dict], thinking: bool = True) -> anthropic.types.Message:
            reply = await trio.to_thread.run_sync(send, on, history, thinking)
            other = await trio.to_thread.run_sync(send, off, history, thinking)
            assert reply.stop_reason == other.stop_reason
            sent_on, sent_off = sim.requests(last=2)
            assert sent_on == sent_off
            return reply

        with structlog.testing.capture_logs() as logs:
            for step in range(STEPS + 1):
                reply = await both(messages)
                if reply.stop_reason != "tool_use":
                    break
                messages.append({"role": "assistant", "content": [b.model_dump(exclude_none=True)
                                                                  for b in reply.content]})
                messages.append({"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": b.id, "content": f"step {step}\n{OUTPUT}"}
                    for b in reply.content if b.type == "tool_use"]})
                if step == 10:
                    await both(edited(messages, 4))
                if step == 14:
                    await both(moved(messages, 6))
                if step == 18:
                    await both(messages, thinking=False)
            await wait_finished(logs, 2 * (STEPS + 4))
        assert reply.content[-1].text == "finished"
        assert len(sim.requests(last=1)[0]["messages"]) > 2 * STEPS
        size = len(str(messages))
        assert size > 1_000_000
    rungs = agreed(logs, STEPS + 4, remembering, forgetting, "claude_code")
    assert ("cache", {"envelope": 14, "cache": 1}) in rungs  # the moved envelope's turn: from the cache


SHELL = {"type": "function", "name": "shell", "description": "Run a command",
         "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}


def codex_send(url: str, items: list[dict[str, Any]], effort: str = "high") -> Any:
    client = openai.OpenAI(base_url=f"{url}/codex/v1", api_key="x", max_retries=0)
    return final_response(client, model="deepseek-v4-pro", input=items, tools=[SHELL], store=False,
                          include=["reasoning.encrypted_content"], instructions="You are Codex.",
                          reasoning={"effort": effort, "summary": "auto"})


async def test_a_remembered_codex_session_reaches_the_upstream_as_a_forgotten_one(sim, monkeypatch) -> None:
    monkeypatch.setenv("GATEWAY_THINKING_SECRET", "one-secret-for-both-gateways")
    sim.reset(verify_replay=True)
    script = "SIM:script " + " ;; ".join(f"shell echo step {k}" for k in range(STEPS)) + " ;; text finished"
    items: list[dict[str, Any]] = [{"type": "message", "role": "user",
                                    "content": [{"type": "input_text", "text": script}]}]
    async with open_gateway(CONFIG.format(mb=256, sim=SIM), sim=sim) as (on, remembering), \
            open_gateway(CONFIG.format(mb=0, sim=SIM), sim=sim) as (off, forgetting):

        async def both(history: list[dict[str, Any]], effort: str = "high") -> Any:
            reply = await trio.to_thread.run_sync(codex_send, on, history, effort)
            other = await trio.to_thread.run_sync(codex_send, off, history, effort)
            assert [o.type for o in reply.output] == [o.type for o in other.output]
            sent_on, sent_off = sim.requests(last=2)
            assert sent_on == sent_off
            return reply

        with structlog.testing.capture_logs() as logs:
            for step in range(STEPS + 1):
                reply = await both(items)
                calls = [o for o in reply.output if o.type == "function_call"]
                if not calls:
                    break
                items += echoed(reply)
                items += [{"type": "function_call_output", "call_id": c.call_id, "output": f"step {step}\n{OUTPUT}"}
                          for c in calls]
                if step == 10:
                    at = next(i for i, it in enumerate(items) if it.get("type") == "function_call_output")
                    await both([*items[:at], {**items[at], "output": "edited"}, *items[at + 1:]])
                if step == 18:
                    await both(items, effort="none")
            await wait_finished(logs, 2 * (STEPS + 3))
        assert reply.output_text == "finished"
        assert len(str(items)) > 1_000_000
    agreed(logs, STEPS + 3, remembering, forgetting, "codex")
