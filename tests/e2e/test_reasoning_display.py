"""Whether and how reasoning is shown, end to end (issue 17): the official openai / anthropic SDKs
→ hypercorn → gateway (shipped stages) → ``openai_chat`` → the strict simulator (its own
process, ``verify_replay``: a tool turn whose reasoning is not replayed byte for byte is a 400).

Responses ``reasoning.summary: none`` and Anthropic ``thinking.display: omitted`` withhold the
reasoning text from the client: no summary part or delta, an empty thinking block; the reasoning
item's ``encrypted_content`` / the block's signature still carry the envelope, so every later
turn replays the exact reasoning. Proven over long sessions (dozens of tool turns, over 1 MB of
history), streaming and not. ``text.verbosity`` reaches the model as the system prompt's last
line, and the Response echoes the client's ``max_output_tokens``, not the budget sent upstream.
"""

from __future__ import annotations

import json
import random
from typing import Any

import anthropic
import openai
import trio

from pipeline.protocols.responses.client_decode import VERBOSITY_LOW
from tests.e2e.serving import SIM, open_gateway

CONFIG = f"""
upstreams:
  sim: {{{SIM}}}
pipelines:
  claude_code: {{client: anthropic, stages: [thinking_filter, token_budget, tool_ids], upstream: sim}}
  codex: {{client: responses, stages: [thinking_filter, token_budget, tool_ids], upstream: sim}}
"""
TURNS = 32  # tool turns per long session
OUTPUT_CHARS = 34_000  # each tool result: 32 of them make the history pass 1 MB
HIDDEN = "hidden-plan"  # in every turn's reasoning; never in what the client is shown
EXEC = {"type": "function", "name": "exec_command", "description": "Run a command", "strict": False,
        "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}}
BASH = {"name": "Bash", "description": "Run a shell command",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}


def script(turns: int) -> str:
    steps = " ;; ".join(f"shell echo step {i}" for i in range(turns))
    return f"SIM:think {HIDDEN} {{step}}: look at the output, then go on\nSIM:script {steps} ;; text finished"


def tool_output(i: int) -> str:
    """A command's output of ``OUTPUT_CHARS`` characters: words, not one repeated byte."""
    rng = random.Random(i)
    words = ("build", "test", "passed", "module", "import", "error", "line", "value", "path", "check")
    text = f"step {i}\n"
    while len(text) < OUTPUT_CHARS:
        text += " ".join(rng.choice(words) + str(rng.randrange(1000)) for _ in range(12)) + "\n"
    return text[:OUTPUT_CHARS]


def streamed(manager: Any, shown: list[str], event_types: set[str]) -> Any:
    """Read an SDK stream helper to its end (every event kept as JSON); its final answer."""
    with manager as events:
        for event in events:
            event_types.add(event.type)
            shown.append(event.model_dump_json(warnings=False))
        final = events.get_final_response if hasattr(events, "get_final_response") else events.get_final_message
        return final()


def replay_checks(sim) -> list[dict[str, Any]]:
    checks = sim.stats()["replay"]
    assert checks and all(c["unknown_turns"] == 0 and c["verified_turns"] == c["tool_turns"] for c in checks)
    return checks


# ---------------------------------------------------------------- Responses: reasoning.summary


def codex_session(base_url: str, turns: int, *, stream: bool, summary: str | None,
                  max_output_tokens: int | None = None) -> dict[str, Any]:
    """Codex's loop: every output item echoed back (without ids), each call answered."""
    client = openai.OpenAI(base_url=base_url, api_key="x", max_retries=0, timeout=120)
    items: list[dict[str, Any]] = [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "You are Codex."}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": script(turns)}]}]
    reasoning = {"effort": "high"} if summary is None else {"effort": "high", "summary": summary}
    kwargs: dict[str, Any] = dict(model="gpt-5.5", tools=[EXEC], store=False, include=["reasoning.encrypted_content"],
                                  reasoning=reasoning, text={"verbosity": "low"})
    if max_output_tokens is not None:
        kwargs["max_output_tokens"] = max_output_tokens
    responses, event_types, shown = [], set(), []
    for _ in range(turns + 2):
        if stream:
            response = streamed(client.responses.stream(input=items, **kwargs), shown, event_types)
        else:
            response = client.responses.create(input=items, **kwargs)
            shown.append(response.model_dump_json())
        responses.append(response)
        calls = [o for o in response.output if o.type == "function_call"]
        for out in response.output:
            item = out.model_dump(exclude_none=True)
            item.pop("id", None)
            items.append(item)
        for n, call in enumerate(calls):
            items.append({"type": "function_call_output", "call_id": call.call_id,
                          "output": tool_output(len(responses) * 10 + n)})
        if not calls:
            break
    return {"responses": responses, "types": event_types, "shown": "".join(shown),
            "history_bytes": len(json.dumps(items))}


async def run_codex(sim, turns: int, **kwargs: Any) -> dict[str, Any]:
    sim.reset(verify_replay=True)
    async with open_gateway(CONFIG, sim=sim) as (url, _):
        with trio.fail_after(600):
            return await trio.to_thread.run_sync(lambda: codex_session(f"{url}/v1", turns, **kwargs))


def check_withheld_responses(got: dict[str, Any], turns: int) -> None:
    responses = got["responses"]
    assert [r.status for r in responses] == ["completed"] * (turns + 1)
    assert responses[-1].output_text == "finished"
    for response in responses:
        reasoning = [o for o in response.output if o.type == "reasoning"]
        assert len(reasoning) == 1 and reasoning[0].summary == [] and not reasoning[0].content
        assert reasoning[0].encrypted_content.startswith("gw2.")
    assert not [t for t in got["types"] if t.startswith("response.reasoning")]
    assert HIDDEN not in got["shown"]


class TestResponsesSummary:
    async def test_summary_none_over_a_long_session_replays_byte_exact(self, sim) -> None:
        got = await run_codex(sim, TURNS, stream=True, summary="none")
        assert got["history_bytes"] > 1_000_000
        check_withheld_responses(got, TURNS)
        checks = replay_checks(sim)
        assert checks[-1]["tool_turns"] == TURNS and checks[-1]["verified_bytes"] > 0
        assert sim.stats()["max_request_bytes"] > 1_000_000
        # text.verbosity "low" reached the model; no max_output_tokens was sent, none echoed,
        # although token_budget sent the upstream one.
        last = sim.requests(last=1)[0]
        assert last["messages"][0] == {"role": "system", "content": f"You are Codex.\n\n{VERBOSITY_LOW}"}
        assert last["max_tokens"] > 0 and all(r.max_output_tokens is None for r in got["responses"])

    async def test_summary_none_not_streaming(self, sim) -> None:
        got = await run_codex(sim, 6, stream=False, summary="none", max_output_tokens=60_000)
        check_withheld_responses(got, 6)
        assert replay_checks(sim)[-1]["tool_turns"] == 6
        assert all(r.max_output_tokens == 60_000 for r in got["responses"])  # the client's, as sent

    async def test_no_summary_asked_is_none(self, sim) -> None:
        """Codex leaves ``summary`` out when its setting is ``none``; the API then writes none."""
        got = await run_codex(sim, 3, stream=True, summary=None)
        check_withheld_responses(got, 3)
        assert replay_checks(sim)[-1]["tool_turns"] == 3

    async def test_summary_auto_shows_the_reasoning(self, sim) -> None:
        got = await run_codex(sim, 2, stream=True, summary="auto", max_output_tokens=60_000)
        first = next(o for o in got["responses"][0].output if o.type == "reasoning")
        assert first.summary[0].text.startswith(f"{HIDDEN} 0")
        assert "response.reasoning_summary_text.delta" in got["types"]
        assert all(r.max_output_tokens == 60_000 for r in got["responses"])
        replay_checks(sim)


# ---------------------------------------------------------------- Anthropic: thinking.display


def claude_session(base_url: str, turns: int, *, stream: bool) -> dict[str, Any]:
    """Claude Code's loop with ``display: omitted``: the assistant turns sent back as they came."""
    client = anthropic.Anthropic(base_url=base_url, api_key="x", max_retries=0, timeout=120)
    messages: list[dict[str, Any]] = [{"role": "user", "content": script(turns)}]
    kwargs: dict[str, Any] = dict(model="claude-opus-5-5", max_tokens=32_000, tools=[BASH],
                                  thinking={"type": "adaptive", "display": "omitted"},
                                  system=[{"type": "text", "text": "You are a coding agent."}])
    replies, shown = [], []
    for i in range(turns + 2):
        if stream:
            reply = streamed(client.messages.stream(messages=messages, **kwargs), shown, set())
        else:
            reply = client.messages.create(messages=messages, **kwargs)
            shown.append(reply.model_dump_json())
        replies.append(reply)
        if reply.stop_reason != "tool_use":
            break
        messages.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in reply.content]})
        messages.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": b.id, "content": tool_output(i)}
            for b in reply.content if b.type == "tool_use"]})
    return {"replies": replies, "shown": "".join(shown), "history_bytes": len(json.dumps(messages))}


async def run_claude(sim, turns: int, *, stream: bool) -> dict[str, Any]:
    sim.reset(verify_replay=True)
    async with open_gateway(CONFIG, sim=sim) as (url, _):
        with trio.fail_after(600):
            return await trio.to_thread.run_sync(lambda: claude_session(url, turns, stream=stream))


def check_withheld_thinking(got: dict[str, Any], turns: int) -> None:
    replies = got["replies"]
    assert [r.stop_reason for r in replies] == ["tool_use"] * turns + ["end_turn"]
    for reply in replies:
        (thinking,) = [b for b in reply.content if b.type == "thinking"]
        assert thinking.thinking == "" and thinking.signature.startswith("gw2.")
    assert HIDDEN not in got["shown"]


class TestAnthropicDisplay:
    async def test_display_omitted_over_a_long_session_replays_byte_exact(self, sim) -> None:
        got = await run_claude(sim, TURNS, stream=True)
        assert got["history_bytes"] > 1_000_000
        check_withheld_thinking(got, TURNS)
        checks = replay_checks(sim)
        assert checks[-1]["tool_turns"] == TURNS and checks[-1]["verified_bytes"] > 0
        assert sim.stats()["max_request_bytes"] > 1_000_000

    async def test_display_omitted_not_streaming(self, sim) -> None:
        got = await run_claude(sim, 6, stream=False)
        check_withheld_thinking(got, 6)
        assert replay_checks(sim)[-1]["tool_turns"] == 6
