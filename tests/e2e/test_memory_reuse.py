"""What the conversation memory saves past the decoder, through the production path: Claude
Code's tool loop (the official ``anthropic`` SDK) through two gateways, one remembering
conversations and one not (``server.conversation_memory_mb: 0``), to the simulator. A history
growing past 1 MB over 30 tool turns: each upstream body is the same from both, and the one that
remembers re-encodes and re-estimates only each request's new turn."""

from __future__ import annotations

from typing import Any

import anthropic
import trio

from tests.e2e.serving import SIM, open_gateway


def config(mb: int) -> str:
    """One Claude Code pipeline whose request stages keep the decoder's message objects."""
    return (f"server: {{conversation_memory_mb: {mb}, log_level: warning}}\nupstreams:\n  sim: {{{SIM}}}\n"
            "pipelines:\n  a: {mount: /a, client: anthropic, upstream: sim, stages: [token_budget]}\n")


BASH = {"name": "Bash", "description": "Run a shell command",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}
TURNS = 30
SCRIPT = "SIM:script " + " ;; ".join(f"shell cat src/module_{k}.py" for k in range(TURNS)) + " ;; text finished"


def _output(k: int) -> str:
    return f"# module {k}\n" + "".join(f"def f_{k}_{i}(x):\n    return \"line {i}\\n\" * x\n" for i in range(900))


def turn(client: anthropic.Anthropic, messages: list[dict[str, Any]]) -> anthropic.types.Message:
    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=4096, messages=messages, tools=[BASH],
                                thinking={"type": "disabled"},
                                system=[{"type": "text", "text": "You are a coding agent."}]) as stream:
        return stream.get_final_message()


async def test_a_megabyte_session_is_sent_the_same_with_and_without_memory(sim) -> None:
    async with open_gateway(config(256), sim=sim) as (url, remembering), \
            open_gateway(config(0), sim=sim) as (plain_url, _):
        on, off = (anthropic.Anthropic(base_url=u + "/a", api_key="dummy", max_retries=0) for u in (url, plain_url))
        messages: list[dict[str, Any]] = [{"role": "user", "content": SCRIPT}]
        reused, sizes = [], []
        for _ in range(TURNS + 1):
            reply = await trio.to_thread.run_sync(turn, on, messages)
            other = await trio.to_thread.run_sync(turn, off, messages)
            remembered, forgotten = await trio.to_thread.run_sync(sim.requests, 2)
            assert remembered == forgotten
            sizes.append(len(str(remembered)))
            latest = remembering.conversations.latest()
            assert latest is not None
            slots = latest.slots
            encoded = next(v for k, v in slots.items() if k.startswith("chat_encode"))
            estimated = next(v for k, v in slots.items() if k.endswith("token_budget"))
            reused.append((encoded.reused, estimated.reused, len(encoded.messages)))
            assert [b.type for b in reply.content] == [b.type for b in other.content]
            if reply.stop_reason != "tool_use":
                break
            messages = [*messages, {"role": "assistant", "content": [b.model_dump(exclude_none=True)
                                                                     for b in reply.content]},
                        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": b.id,
                                                      "content": _output(len(reused))}
                                                     for b in reply.content if b.type == "tool_use"]}]
    assert len(reused) == TURNS + 1 and sizes[-1] > 1_000_000
    assert reused[0][:2] == (0, 0)
    assert all(enc == est == n - 2 for enc, est, n in reused[1:]), reused
