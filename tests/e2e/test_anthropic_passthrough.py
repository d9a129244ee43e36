"""Pass-through: Claude Code's dialect → ``type: anthropic_messages`` profile ``anthropic`` (the
real Anthropic API) end to end: the official ``anthropic`` SDK → hypercorn → gateway (the same
stages as every other pipeline) → the production transport → the simulator's real-Anthropic
flavour (``messages_flavour: anthropic``, its own process).

That flavour checks what the real API checks: every thinking block carries its own signature for
the exact text (an empty, foreign or edited one is a 400), ``redacted_thinking`` only as it minted
it, the final tool turn starts with its thinking, a budget below ``max_tokens``, a ``claude-*``
model. So a signature the gateway rewrote, a thinking block it dropped or reordered, a redacted
block it lost, fails here; and nothing may be in the loss report.
"""

from __future__ import annotations

from typing import Any

import anthropic
import msgspec
import pytest
import structlog
import trio

from tests.e2e.serving import SIM_KEY_ENV, open_gateway
from tests.e2e.messages_loop import SCRIPT, claude_loop
from tests.resilience.dialects import finished_lines, wait_finished
from upstreams.simulator.anthropic_validate import endpoint_secret, redact, sign

STAGES = "[thinking_filter, token_budget, tool_ids]"


def config(stages: str) -> str:
    return f"""
upstreams:
  claude: {{type: anthropic_messages, base_url: '${{SIM_URL}}/anthropic', profile: anthropic, api_key_env: {SIM_KEY_ENV}}}
pipelines:
  claude_code:
    client: anthropic
    stages: {stages}
    upstream: claude
"""


def earlier_session(sim: Any) -> list[dict[str, Any]]:
    """A tool turn Claude Code kept from a session held with the API directly (before the gateway):
    a redacted_thinking block and a thinking block, both the API's own, then its tool call."""
    secret = endpoint_secret(msgspec.structs.replace(sim.config, messages_flavour="anthropic"))
    thought = "I should look at the directory first."
    return [{"role": "user", "content": "list the files"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": thought, "signature": sign(secret, thought)},
                {"type": "redacted_thinking", "data": redact(secret, "something the API hid")},
                {"type": "tool_use", "id": "toolu_01EarlierSession0000000", "name": "Bash",
                 "input": {"command": "ls"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01EarlierSession0000000",
                                          "content": "out.txt"}, {"type": "text", "text": SCRIPT}]}]


def assistant_turns(messages: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return [m["content"] for m in messages if m["role"] == "assistant"]


class TestPassThrough:
    @pytest.mark.parametrize("stages", [STAGES, "[token_budget, tool_ids]"])
    async def test_claude_code_tool_loop_with_thinking(self, sim, stages: str) -> None:
        """A three-turn streamed tool loop with thinking on, after a turn of a direct session: the
        client's own thinking, signature and redacted_thinking go back byte for byte, each
        gateway-served turn's thinking returns with the API's own signature (restored from the
        envelope with thinking_filter, echoed by the client without), and nothing is lost."""
        sim.reset(verify_replay=True, messages_flavour="anthropic")
        start = earlier_session(sim)
        async with open_gateway(config(stages), sim=sim) as (url, _):
            with structlog.testing.capture_logs() as logs:
                replies = await trio.to_thread.run_sync(lambda: claude_loop(url, start=start))
                await wait_finished(logs, 3)
        assert [r.stop_reason for r in replies] == ["tool_use", "tool_use", "end_turn"]
        assert replies[-1].content[-1].text == "finished" and replies[0].model == "claude-opus-4-7[1m]"
        lines = finished_lines(logs)
        assert [line["losses"] for line in lines] == [[]] * 3 and [line["status"] for line in lines] == [200] * 3
        sent = sim.requests()
        assert [body["model"] for body in sent] == ["claude-opus-4-7"] * 3  # Claude Code's [1m] marker dropped
        last = sent[-1]
        upstream_turns = assistant_turns(last["messages"])
        assert upstream_turns[0] == start[1]["content"]  # the direct session's blocks, untouched
        secret = endpoint_secret(msgspec.structs.replace(sim.config, messages_flavour="anthropic"))
        shown = [next(b for b in r.content if b.type == "thinking") for r in replies[:2]]
        for turn, reply_thought in zip(upstream_turns[1:], shown, strict=True):
            thought = turn[0]
            assert thought["type"] == "thinking" and thought["thinking"] == reply_thought.thinking
            assert thought["signature"] == sign(secret, reply_thought.thinking)  # the API's own, exactly
        if "thinking_filter" in stages:
            assert all(b.signature.startswith("gw2.") for b in shown)
        else:  # nothing in the way: the client holds the API's blocks and they go back as it sent them
            echoed = [start[1]["content"]] + [[b.model_dump(exclude_none=True) for b in r.content] for r in replies[:2]]
            assert upstream_turns == echoed
        assert [c["verified_turns"] for c in sim.stats()["replay"]] == [0, 1, 2]
        assert [c["unknown_turns"] for c in sim.stats()["replay"]] == [1, 1, 1]  # the direct session's turn
        assert last["thinking"]["type"] == "enabled" and last["thinking"]["budget_tokens"] < last["max_tokens"]
        # Claude Code's system message inside messages[] (which the API refuses there) is folded
        assert last["system"] == "You are a coding agent.\n\nReminder: be brief."
        assert all(m["role"] in ("user", "assistant") for m in last["messages"])
