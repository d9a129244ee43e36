"""Transparent retries seen from the official SDKs (their own retries off): a tool loop completes
while the upstream answers one request with 429 and the next with 503, under the default policy.

This is the setup the real Claude Code / Codex runs use (simulator ``faults`` schedule, here on
the simulator server reached through the production transport); the gateway must absorb both
failures before the first byte.
"""

from __future__ import annotations

import anthropic
import openai
import structlog
import trio

from tests.e2e.responses_loop import echoed, final_response
from tests.e2e.serving import SIM, open_gateway
from tests.resilience.dialects import wait_finished
from upstreams.simulator.testing import SimulatorProcess

CONFIG = """
upstreams:
  sim: {%s}
pipelines:
  claude_code: {client: anthropic, upstream: sim, stages: [thinking_filter, token_budget, tool_ids]}
  codex: {client: responses, upstream: sim, stages: [thinking_filter, token_budget, tool_ids], mount: /codex}
  chat: {client: chat, upstream: sim, stages: [token_budget, tool_ids], mount: /chat}
""" % SIM
FAULTS = [{"on_request": 2, "kind": "429"}, {"on_request": 3, "kind": "503"}]
PROMPT = "SIM:script shell echo one ;; shell echo two ;; text finished"


def anthropic_loop(base: str) -> list[str]:
    client = anthropic.Anthropic(base_url=base, api_key="k", max_retries=0)
    tool = {"name": "Bash", "description": "Run a shell command",
            "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}
    messages: list[dict] = [{"role": "user", "content": PROMPT}]
    stops = []
    for _ in range(4):
        with client.messages.stream(model="claude-opus-5-5", max_tokens=16000, messages=messages, tools=[tool],
                                    thinking={"type": "adaptive"}) as stream:
            reply = stream.get_final_message()
        stops.append(reply.stop_reason)
        if reply.stop_reason != "tool_use":
            stops.append(reply.content[-1].text)
            break
        messages.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in reply.content]})
        messages.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": b.id, "content": "ok"}
                                                     for b in reply.content if b.type == "tool_use"]})
    return stops


def responses_loop(base: str) -> list[str]:
    client = openai.OpenAI(base_url=base, api_key="k", max_retries=0)
    tool = {"type": "function", "name": "exec_command", "description": "Run a command", "strict": False,
            "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}}
    items: list = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": PROMPT}]}]
    statuses = []
    for _ in range(4):
        response = final_response(client, model="gpt-5.5", input=items, tools=[tool], store=False,
                                  include=["reasoning.encrypted_content"])
        statuses.append(response.status)
        calls = [o for o in response.output if o.type == "function_call"]
        if not calls:
            statuses.append(response.output_text)
            break
        items += echoed(response)
        items.extend({"type": "function_call_output", "call_id": c.call_id, "output": "ok"} for c in calls)
    return statuses


def chat_loop(base: str) -> list[str]:
    client = openai.OpenAI(base_url=base, api_key="k", max_retries=0)
    tool = {"type": "function", "function": {"name": "exec_command", "parameters": {
        "type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}}}
    messages: list[dict] = [{"role": "user", "content": PROMPT}]
    finishes = []
    for _ in range(4):
        with client.chat.completions.stream(model="deepseek-v4-pro", messages=messages, tools=[tool]) as stream:
            for _event in stream:
                pass
            choice = stream.get_final_completion().choices[0]
        finishes.append(choice.finish_reason)
        if choice.finish_reason != "tool_calls":
            finishes.append(choice.message.content)
            break
        calls = choice.message.tool_calls
        messages.append({"role": "assistant", "content": choice.message.content,
                         "reasoning_content": choice.message.model_extra.get("reasoning_content"),
                         "tool_calls": [{"id": c.id, "type": "function", "function": {
                             "name": c.function.name, "arguments": c.function.arguments}} for c in calls]})
        messages.extend({"role": "tool", "tool_call_id": c.id, "content": "ok"} for c in calls)
    return finishes


LOOPS = {"anthropic": (anthropic_loop, "", ["tool_use", "tool_use", "end_turn", "finished"]),
         "responses": (responses_loop, "/codex/v1", ["completed", "completed", "completed", "finished"]),
         "chat": (chat_loop, "/chat/v1", ["tool_calls", "tool_calls", "stop", "finished"])}


async def run_loop(dialect: str, sim: SimulatorProcess) -> None:
    loop, path, expected = LOOPS[dialect]
    sim.reset(faults=FAULTS)
    async with open_gateway(CONFIG, sim=sim) as (url, _):
        with structlog.testing.capture_logs() as logs:
            with trio.fail_after(20):
                result = await trio.to_thread.run_sync(loop, url + path)
            await wait_finished(logs, 3)
    assert result == expected
    assert sim.chat_requests == 5  # three turns, the second one tried three times
    attempts = [e["attempts"] for e in logs if e.get("event") == "request_finished"]
    assert attempts == [1, 3, 1]
    failed = [(e["code"], e["status"], e["retry_in_s"]) for e in logs if e.get("event") == "upstream_attempt_failed"]
    assert [f[:2] for f in failed] == [("rate_limit", 429), ("overloaded", 503)]
    assert failed[0][2] == 1.0 and 0 <= failed[1][2] <= 0.5  # Retry-After 1 s, then backoff base * 2


async def test_anthropic_sdk_loop_survives_429_then_503(sim: SimulatorProcess) -> None:
    """Claude Code's SDK sees three clean turns."""
    await run_loop("anthropic", sim)


async def test_responses_sdk_loop_survives_429_then_503(sim: SimulatorProcess) -> None:
    """Codex's shape through the openai SDK sees three completed responses."""
    await run_loop("responses", sim)


async def test_chat_sdk_loop_survives_429_then_503(sim: SimulatorProcess) -> None:
    """A Chat Completions client sees three clean turns."""
    await run_loop("chat", sim)
