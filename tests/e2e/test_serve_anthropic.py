"""Anthropic Messages end to end: the official anthropic SDK → hypercorn → gateway → the production
transport → the simulator server (its own process).

A multi-step tool loop with thinking on: the SDK's strict stream accumulator must accept every
event, the thinking block's signature must be echoed back, and the simulator (which 400s a
tool-call turn without its reasoning_content, and with ``verify_replay`` any altered one) must
receive DeepSeek's reasoning exactly.
"""

from __future__ import annotations

import anthropic
import httpx
import structlog
import trio

from tests.e2e.serving import SIM, open_gateway
from tests.resilience.dialects import finished_lines, wait_finished

CONFIG = """
upstreams:
  sim: {%s}
pipelines:
  claude_code:
    client: anthropic
    stages: [thinking_filter, token_budget, tool_ids]
    upstream: sim
""" % SIM

BASH = {"name": "Bash", "description": "Run a shell command",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}


def loop(base_url: str, prompt: str, *, stream: bool = True, steps: int = 4, sub_agent: bool = False,
         ) -> list[anthropic.types.Message]:
    """Claude Code's tool loop; ``sub_agent``: in the shape of Claude Code 2.1.166's sub-agents
    (``thinking: {type: disabled}`` with ``output_config.effort``, a system message in messages[])."""
    client = anthropic.Anthropic(base_url=base_url, api_key="dummy", max_retries=0)
    messages: list[dict] = [{"role": "user", "content": prompt}]
    if sub_agent:
        messages.append({"role": "system", "content": "Skills available: none."})
    replies = []
    for _ in range(steps):
        kwargs = dict(model="claude-opus-5-5", max_tokens=32000 if stream else 4096, messages=messages, tools=[BASH],
                      thinking={"type": "disabled" if sub_agent else "adaptive"},
                      system=[{"type": "text", "text": "You are a coding agent."}])
        if sub_agent:
            kwargs["extra_body"] = {"output_config": {"effort": "high"}}
        if stream:
            with client.messages.stream(**kwargs) as s:
                reply = s.get_final_message()
        else:
            reply = client.messages.create(**kwargs)
        replies.append(reply)
        if reply.stop_reason != "tool_use":
            break
        messages.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in reply.content]})
        results = [{"type": "tool_result", "tool_use_id": b.id, "content": f"ran {b.input['command']}"}
                   for b in reply.content if b.type == "tool_use"]
        messages.append({"role": "user", "content": results})
    return replies


class TestAnthropicEndToEnd:
    async def test_streaming_tool_loop_with_thinking(self, sim) -> None:
        """Three turns: two tool calls then text; reasoning replayed exactly every turn."""
        sim.reset(verify_replay=True)
        prompt = "SIM:script shell echo hello > out.txt ;; shell cat out.txt ;; text finished"
        async with open_gateway(CONFIG, sim=sim) as (url, _):
            replies = await trio.to_thread.run_sync(loop, url, prompt)
        sent = sim.requests()
        assert [r.stop_reason for r in replies] == ["tool_use", "tool_use", "end_turn"]
        first = replies[0]
        thinking = next(b for b in first.content if b.type == "thinking")
        assert thinking.thinking and thinking.signature.startswith("gw2.")
        tool = next(b for b in first.content if b.type == "tool_use")
        assert tool.name == "Bash" and tool.input == {"command": "echo hello > out.txt"}
        assert replies[-1].content[-1].text == "finished"
        assert first.model == "claude-opus-5-5"
        assert first.usage.output_tokens > 0
        # Turn 3's upstream request carries both earlier reasoning texts, exactly as shown to the client.
        assistants = [m for m in sent[-1]["messages"] if m["role"] == "assistant"]
        shown = [next(b.thinking for b in r.content if b.type == "thinking") for r in replies[:2]]
        assert [a["reasoning_content"] for a in assistants] == shown

    async def test_sub_agent_shape_thinking_disabled_with_an_effort(self, sim) -> None:
        """Claude Code 2.1.166's sub-agent request shape (thinking disabled with an effort, a system
        message inside messages[]) through a tool loop: DeepSeek gets thinking disabled, no effort,
        no reasoning and one leading system message; the effort it did not get is a loss on every
        request (tests/clients/test_matrix.py runs the real 2.1.166 sub-agent)."""
        sim.reset(verify_replay=True, reject_mid_system=True)
        async with open_gateway(CONFIG, sim=sim) as (url, _):
            with structlog.testing.capture_logs() as logs:
                replies = await trio.to_thread.run_sync(
                    lambda: loop(url, "SIM:script shell cat out.txt ;; text sub-agent done", sub_agent=True))
                await wait_finished(logs, 2)
        assert [r.stop_reason for r in replies] == ["tool_use", "end_turn"]
        assert replies[-1].content[-1].text == "sub-agent done"
        assert not any(b.type == "thinking" for r in replies for b in r.content)
        sent = sim.requests()
        assert [body["thinking"] for body in sent] == [{"type": "disabled"}] * 2
        assert not any("reasoning_effort" in body for body in sent)
        assert [m["role"] for m in sent[-1]["messages"]] == ["system", "user", "assistant", "tool"]
        assert not any("reasoning_content" in m for m in sent[-1]["messages"])
        assert [line["losses"] for line in finished_lines(logs)] == [
            ["effort: effort 'high' not sent: thinking is disabled"]] * 2

    async def test_non_streaming_tool_loop(self, sim) -> None:
        """stream=false gives the same loop (Claude Code falls back to it)."""
        sim.reset(verify_replay=True)
        async with open_gateway(CONFIG, sim=sim) as (url, _):
            replies = await trio.to_thread.run_sync(
                lambda: loop(url, "SIM:script shell ls ;; text ok", stream=False))
        assert [r.stop_reason for r in replies] == ["tool_use", "end_turn"]

    async def test_count_tokens_and_models_and_hello(self, sim) -> None:
        """count_tokens answers locally; /v1/models in Anthropic's shape; /api/hello is 200."""

        def calls(base: str):
            client = anthropic.Anthropic(base_url=base, api_key="dummy", max_retries=0)
            count = client.messages.count_tokens(model="claude-opus-5-5", messages=[{"role": "user", "content": "hello " * 400}])
            models = client.models.list()
            return count, models

        async with open_gateway(CONFIG, sim=sim) as (url, _):
            count, models = await trio.to_thread.run_sync(calls, url)
            async with httpx.AsyncClient() as http:
                hello = await http.head(f"{url}/api/hello")
                beta = await http.post(f"{url}/v1/messages/count_tokens?beta=true",
                                       json={"model": "m", "messages": [{"role": "user", "content": "x"}]})
        assert 300 < count.input_tokens < 1000
        assert any(m.id == "deepseek-v4-pro" for m in models.data)
        assert hello.status_code == 200 and beta.status_code == 200

    async def test_bad_request_is_anthropic_error(self, sim) -> None:
        """Malformed input gets Anthropic's error JSON, never a 500."""
        async with open_gateway(CONFIG, sim=sim) as (url, _):
            async with httpx.AsyncClient() as http:
                bad_json = await http.post(f"{url}/v1/messages", content=b"{nope", headers={"content-type": "application/json"})
                no_messages = await http.post(f"{url}/v1/messages", json={"model": "m", "max_tokens": 5})
        for response in (bad_json, no_messages):
            assert response.status_code == 400
            body = response.json()
            assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
