"""What the gateway sends a Messages upstream stays within what that upstream accepts, end to end
(the official SDKs → hypercorn → gateway → the production transport → the simulator, its own
process), and what it leaves out is in the loss report:

- the real Anthropic API (profile ``anthropic``, the simulator's real-Anthropic flavour, which
  refuses what the API refuses): with thinking on no ``temperature`` but 1, no ``top_k``, no
  ``top_p`` below 0.95, a thinking budget of at least 1024 and below ``max_tokens`` (none when
  ``max_tokens`` leaves no room), no ``temperature`` above 1;
- vLLM, llama.cpp and Ollama on ``/v1/messages`` (profile ``local_anthropic``): no
  ``output_config``, so Claude Code's effort is not sent, and says so.
"""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import structlog
import trio

from tests.e2e.messages_loop import BASH, claude_loop
from tests.e2e.serving import SIM_KEY_ENV, open_gateway
from tests.resilience.dialects import finished_lines, wait_finished

STAGES = "[thinking_filter, token_budget, tool_ids]"
CONFIG = f"""
upstreams:
  claude: {{type: anthropic_messages, base_url: '${{SIM_URL}}/anthropic', profile: anthropic,
            api_key_env: {SIM_KEY_ENV}}}
  local: {{type: anthropic_messages, base_url: '${{SIM_URL}}/anthropic', profile: local_anthropic,
           api_key_env: {SIM_KEY_ENV}, models: {{default: deepseek-v4-pro}}}}
pipelines:
  claude_code: {{client: anthropic, stages: {STAGES}, upstream: claude}}
  chat: {{client: chat, mount: /chat, stages: {STAGES}, upstream: claude}}
  bare: {{client: anthropic, mount: /bare, stages: [thinking_filter, tool_ids], upstream: claude}}
  local: {{client: anthropic, mount: /local, stages: {STAGES}, upstream: local}}
"""
SAMPLING = ("temperature", "top_p", "top_k")


def kinds(line: dict[str, Any]) -> list[str]:
    return [loss.split(":", 1)[0] for loss in line["losses"]]


async def test_the_real_apis_sampling_and_budget_rules(sim) -> None:
    """Claude Code with sampling set and thinking on: a three-turn tool loop the API takes, each
    request without temperature, top_p and top_k (three losses each); a Chat client's temperature
    the same; a max_tokens with no room for a budget: thinking off, a loss, a 200."""
    sim.reset(verify_replay=True, messages_flavour="anthropic")
    async with open_gateway(CONFIG, sim=sim) as (url, _):
        with structlog.testing.capture_logs() as logs:
            replies = await trio.to_thread.run_sync(lambda: claude_loop(
                url, extra_body={"temperature": 0.3, "top_p": 0.5, "top_k": 40}))
            await wait_finished(logs, 3)
        assert [r.stop_reason for r in replies] == ["tool_use", "tool_use", "end_turn"]
        assert [kinds(line) for line in finished_lines(logs)] == [list(SAMPLING)] * 3
        sent = sim.requests()
        assert all(not set(SAMPLING) & set(body) for body in sent) and len(sent) == 3
        assert [c["verified_turns"] for c in sim.stats()["replay"]] == [0, 1, 2]

        chat = openai.OpenAI(base_url=url + "/chat/v1", api_key="dummy", max_retries=0)
        # Without token_budget (which keeps a thinking floor of 8192 output tokens) max_tokens stays small.
        client = anthropic.Anthropic(base_url=url + "/bare", api_key="dummy", max_retries=0)
        with structlog.testing.capture_logs() as logs:
            answer = await trio.to_thread.run_sync(lambda: chat.chat.completions.create(
                model="claude-opus-4-7", temperature=1.5, messages=[{"role": "user", "content": "SIM:text hi"}],
                extra_body={"thinking": {"type": "enabled"}}))
            short = await trio.to_thread.run_sync(lambda: client.messages.create(
                model="claude-opus-4-7", max_tokens=1000, tools=[BASH],  # type: ignore[list-item]
                messages=[{"role": "user", "content": "SIM:text brief"}],
                thinking={"type": "enabled", "budget_tokens": 8000}))
            await wait_finished(logs, 2)
        assert answer.choices[0].message.content == "hi" and short.content[-1].text == "brief"  # type: ignore[union-attr]
        by_pipeline = {line["pipeline"]: line for line in finished_lines(logs)}
        assert "temperature" in kinds(by_pipeline["chat"])
        chat_body, short_body = sim.requests()[-2:]
        assert "temperature" not in chat_body and chat_body["thinking"]["type"] == "enabled"
        assert short_body["max_tokens"] == 1000 and short_body["thinking"] == {"type": "disabled"}
        assert "thinking" in kinds(by_pipeline["bare"])


async def test_local_anthropic_effort_is_a_loss(sim) -> None:
    """Claude Code's output_config.effort to a local server's /v1/messages: a three-turn tool loop
    with thinking on, no output_config sent, the effort a loss in every request's line."""
    async with open_gateway(CONFIG, sim=sim) as (url, _):
        with structlog.testing.capture_logs() as logs:
            replies = await trio.to_thread.run_sync(lambda: claude_loop(
                url + "/local", extra_body={"output_config": {"effort": "high"}}))
            await wait_finished(logs, 3)
    assert [r.stop_reason for r in replies] == ["tool_use", "tool_use", "end_turn"]
    lines = finished_lines(logs)
    assert len(lines) == 3 and all(kinds(line).count("effort") == 1 for line in lines), lines
    sent = sim.requests()
    assert all("output_config" not in body and body["thinking"]["type"] == "enabled" for body in sent)
