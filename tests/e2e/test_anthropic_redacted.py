"""An upstream's ``redacted_thinking`` on the real Anthropic API (profile ``anthropic``) end to end:
the official SDKs → hypercorn → gateway → the production transport → the simulator's
real-Anthropic flavour (its own process), which answers ``SIM:redact`` with a thinking block and a
``redacted_thinking`` block it minted, and under ``verify_replay`` refuses a tool turn whose
redacted data does not come back exactly, after its thinking block, with the calls it preceded.

With an Anthropic client it round-trips untouched: streamed to the client as a
``redacted_thinking`` block (its data our envelope with thinking_filter, the API's own without),
accepted back in history, sent back to the same upstream exactly. Anywhere else (another upstream,
a Chat or Responses client) it is a recorded loss and never sent on.
"""

from __future__ import annotations

from typing import Any

import anthropic
import msgspec
import openai
import pytest
import structlog
import trio

from tests.e2e.messages_loop import BASH, claude_loop
from tests.e2e.serving import SIM, SIM_KEY_ENV, open_gateway
from tests.resilience.dialects import finished_lines, wait_finished
from upstreams.simulator.anthropic_validate import endpoint_secret, redact, sign

HIDDEN = "the plan the API would not show"
# Tool turns; each result ~40 KB: the last request carries ~0.5 MB of history (~125k tokens, within
# the 200k window the anthropic profile has, where 1 MB would be refused as too long).
STEPS = 12
SCRIPT = ("SIM:redact " + HIDDEN + "\nSIM:script " + " ;; ".join(f"shell echo step{n}" for n in range(STEPS))
          + " ;; text finished")
OUTPUT = "".join(f"{n:06d} a line of tool output the loop carries along\n" for n in range(800))  # ~40 KB
FILTER = "[thinking_filter, token_budget, tool_ids]"


def config(stages: str) -> str:
    claude = (f"type: anthropic_messages, base_url: '${{SIM_URL}}/anthropic', profile: anthropic, "
              f"api_key_env: {SIM_KEY_ENV}")
    return f"""
upstreams:
  claude: {{{claude}}}
  claude_other: {{{claude}}}
  deepseek: {{{SIM}}}
pipelines:
  claude_code: {{client: anthropic, stages: {stages}, upstream: claude}}
  other_account: {{client: anthropic, mount: /other, stages: {stages}, upstream: claude_other}}
  deepseek_chat: {{client: anthropic, mount: /deepseek, stages: {stages}, upstream: deepseek}}
  chat_client: {{client: chat, mount: /chat, stages: {stages}, upstream: claude}}
  responses_client: {{client: responses, mount: /responses, stages: {stages}, upstream: claude}}
"""


def secret(sim: Any) -> bytes:
    return endpoint_secret(msgspec.structs.replace(sim.config, messages_flavour="anthropic"))


def dumped(reply: anthropic.types.Message) -> list[dict[str, Any]]:
    return [b.model_dump(exclude_none=True) for b in reply.content]


def all_text(body: Any) -> str:
    return msgspec.json.encode(body).decode()


async def lines_of(logs: list[dict[str, Any]], *pipelines: str) -> list[dict[str, Any]]:
    """The request_finished lines of these pipelines, once each has one (an earlier request's may
    land in the capture too: it is written just after that request's last byte)."""
    with trio.move_on_after(2):
        while not all(any(line["pipeline"] == p for line in finished_lines(logs)) for p in pipelines):
            await trio.sleep(0.001)
    return [line for line in finished_lines(logs) if line["pipeline"] in pipelines]


@pytest.mark.parametrize("stages", [FILTER, "[token_budget, tool_ids]"])
async def test_redacted_thinking_round_trips_to_its_upstream(sim, stages: str) -> None:
    """Twelve streamed tool turns with thinking on, ~0.5 MB of history at the end: every turn's
    redacted_thinking reaches Claude Code as one, comes back in its history and goes back to the
    API byte for byte after that turn's thinking block (the simulator verifies each), no loss."""
    sim.reset(verify_replay=True, messages_flavour="anthropic")
    minted = redact(secret(sim), HIDDEN)
    async with open_gateway(config(stages), sim=sim) as (url, _):
        with structlog.testing.capture_logs() as logs:
            replies = await trio.to_thread.run_sync(
                lambda: claude_loop(url, script=SCRIPT, steps=STEPS + 1, output=OUTPUT))
            await wait_finished(logs, STEPS + 1)
    assert [r.stop_reason for r in replies] == ["tool_use"] * STEPS + ["end_turn"]
    for reply in replies:
        kinds = [b.type for b in reply.content]
        assert kinds[:2] == ["thinking", "redacted_thinking"], kinds
        data = reply.content[1].data  # type: ignore[union-attr]
        assert data.startswith("gw2.") if "thinking_filter" in stages else data == minted
    lines = finished_lines(logs)
    assert [line["losses"] for line in lines] == [[]] * (STEPS + 1) and {line["status"] for line in lines} == {200}
    last = sim.requests()[-1]
    assert len(msgspec.json.encode(last)) > 450_000
    turns = [m["content"] for m in last["messages"] if m["role"] == "assistant"]
    assert len(turns) == STEPS
    for turn, reply in zip(turns, replies, strict=False):
        thought = reply.content[0].thinking  # type: ignore[union-attr]
        assert turn[:2] == [{"type": "thinking", "thinking": thought, "signature": sign(secret(sim), thought)},
                            {"type": "redacted_thinking", "data": minted}]
    checks = sim.stats()["replay"]
    assert [c["verified_turns"] for c in checks] == list(range(STEPS + 1))


async def test_redacted_thinking_is_a_loss_anywhere_else(sim) -> None:
    """The history of a finished loop (redacted_thinking envelopes in it) sent to another
    Anthropic upstream and to DeepSeek: each turn's redacted block is a loss, nothing of it (nor
    of any gateway envelope) is sent. A Chat and a Responses client of the Anthropic upstream never
    see the block; its loss is in their request's log line."""
    sim.reset(messages_flavour="anthropic")
    minted = redact(secret(sim), HIDDEN)
    script = "SIM:redact " + HIDDEN + "\nSIM:script shell echo one ;; shell echo two ;; text finished"
    async with open_gateway(config(FILTER), sim=sim) as (url, _):
        replies = await trio.to_thread.run_sync(lambda: claude_loop(url, script=script))
        history: list[dict[str, Any]] = [{"role": "user", "content": script}]
        for reply in replies:
            history.append({"role": "assistant", "content": dumped(reply)})
            if reply.stop_reason == "tool_use":
                history.append({"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": b.id, "content": "ran"}
                    for b in reply.content if b.type == "tool_use"]})
        history.append({"role": "user", "content": "SIM:text again"})
        own = anthropic.Anthropic(base_url=url, api_key="dummy", max_retries=0)  # not streamed: the one fold
        whole = await trio.to_thread.run_sync(lambda: own.messages.create(
            model="claude-opus-4-7", max_tokens=16000, thinking={"type": "enabled", "budget_tokens": 8000},
            messages=[{"role": "user", "content": "SIM:redact\nSIM:text hi"}]))
        assert [b.type for b in whole.content] == ["thinking", "redacted_thinking", "text"]
        assert whole.content[1].data.startswith("gw2.")  # type: ignore[union-attr]
        client = anthropic.Anthropic(base_url=url + "/other", api_key="dummy", max_retries=0)
        with structlog.testing.capture_logs() as logs:
            other = await trio.to_thread.run_sync(lambda: client.messages.create(
                model="claude-opus-4-7", max_tokens=16000, messages=history, tools=[BASH],  # type: ignore[arg-type]
                thinking={"type": "enabled", "budget_tokens": 8000}))
            [line] = await lines_of(logs, "other_account")
        assert other.content[-1].text == "again"  # type: ignore[union-attr]
        sent = sim.requests()[-1]
        assert "redacted_thinking" not in all_text(sent) and minted not in all_text(sent) \
            and "gw2." not in all_text(sent)
        losses = line["losses"]
        assert sum(loss.startswith("redacted_thinking") for loss in losses) == 3, losses

        client = anthropic.Anthropic(base_url=url + "/deepseek", api_key="dummy", max_retries=0)
        with structlog.testing.capture_logs() as logs:
            await trio.to_thread.run_sync(lambda: client.messages.create(
                model="claude-opus-4-7", max_tokens=16000, messages=history, tools=[BASH],  # type: ignore[arg-type]
                thinking={"type": "enabled", "budget_tokens": 8000}))
            [line] = await lines_of(logs, "deepseek_chat")
        sent = sim.requests()[-1]
        assert minted not in all_text(sent) and "gw2." not in all_text(sent)
        assert sum(loss.startswith("redacted_thinking") for loss in line["losses"]) == 3

        chat = openai.OpenAI(base_url=url + "/chat/v1", api_key="dummy", max_retries=0)
        responses = openai.OpenAI(base_url=url + "/responses/v1", api_key="dummy", max_retries=0)
        with structlog.testing.capture_logs() as logs:
            stream = await trio.to_thread.run_sync(lambda: list(chat.chat.completions.create(
                model="claude-opus-4-7", messages=[{"role": "user", "content": "SIM:redact\nSIM:text hi"}],
                stream=True, extra_body={"thinking": {"type": "enabled"}})))
            answer = await trio.to_thread.run_sync(lambda: responses.responses.create(
                model="claude-opus-4-7", input="SIM:redact\nSIM:text hi", reasoning={"effort": "high"}))
            lines = await lines_of(logs, "chat_client", "responses_client")
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "hi"
        assert answer.output_text == "hi" and [item.type for item in answer.output] == ["reasoning", "message"]
        assert len(lines) == 2
        for line in lines:
            assert any(loss.startswith("upstream_block_dropped") and "redacted_thinking" in loss
                       for loss in line["losses"]), line
