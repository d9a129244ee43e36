"""The simulator's DeepSeek-Anthropic mode (``POST /anthropic/v1/messages``): its answers, its own
signatures, and the 400s of DeepSeek's Anthropic endpoint, through ``Simulator.respond``."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.upstreams import anthropic_helpers as helpers
from tests.upstreams.anthropic_helpers import BASH, history, post
from upstreams.simulator import Simulator
from upstreams.simulator.anthropic_validate import BAD_SIGNATURE, MUST_PASS_BACK
from upstreams.simulator.config import SimConfig

def body(messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"model": "deepseek-v4-pro", "max_tokens": 4096, "messages": messages, "tools": [BASH], "stream": True,
            "thinking": {"type": "enabled"}, **extra}


def first_turn(sim: Simulator) -> list[dict[str, Any]]:
    return helpers.first_turn(sim, body)


def message_of(sim: Simulator, request: dict[str, Any]) -> str:
    status, answer = post(sim, request)
    assert status == 400, answer
    return answer["error"]["message"]


class TestAnswers:
    def test_scripted_tool_loop_with_its_own_signatures(self) -> None:
        """The same directives as the Chat mode; the thinking block's signature is the endpoint's own
        and comes back accepted, and verify_replay counts the turn."""
        sim = Simulator(SimConfig(verify_replay=True))
        blocks = first_turn(sim)
        assert [b["type"] for b in blocks] == ["thinking", "text", "tool_use"]
        assert blocks[0]["thinking"] and blocks[0]["signature"]
        assert blocks[2]["name"] == "Bash" and blocks[2]["input"] == {"command": "ls"}
        status, events = post(sim, body(history(blocks)))
        assert status == 200
        assert events[-2]["delta"]["stop_reason"] == "end_turn" and events[-1]["type"] == "message_stop"
        texts = [e["delta"]["text"] for e in events if e["type"] == "content_block_delta"
                 and e["delta"]["type"] == "text_delta"]
        assert "".join(texts) == "done"
        assert sim.stats.replay[-1].verified_turns == 1

    def test_non_streaming_body_and_x_api_key(self) -> None:
        sim = Simulator(SimConfig(api_key="k"))
        status, answer = post(sim, body([{"role": "user", "content": "SIM:text hi"}], stream=False), {"x-api-key": "k"})
        assert status == 200 and answer["content"][-1] == {"type": "text", "text": "hi"}
        assert answer["stop_reason"] == "end_turn" and answer["usage"]["output_tokens"] > 0
        assert post(sim, body([{"role": "user", "content": "x"}]), {"x-api-key": "wrong"})[0] == 401


class TestRules:
    def test_tool_turn_without_its_thinking_block(self) -> None:
        sim = Simulator()
        blocks = [b for b in first_turn(sim) if b["type"] != "thinking"]
        assert message_of(sim, body(history(blocks))) == MUST_PASS_BACK
        assert post(sim, body(history(blocks), thinking={"type": "disabled"}))[0] == 200

    @pytest.mark.parametrize("signature", ["EqQBCkgIARAB-anthropic", "gw2.AAAA-envelope"])
    def test_foreign_signature(self, signature: str) -> None:
        sim = Simulator()
        blocks = first_turn(sim)
        blocks[0]["signature"] = signature
        assert BAD_SIGNATURE in message_of(sim, body(history(blocks)))

    def test_changed_text_under_its_signature(self) -> None:
        sim = Simulator()
        blocks = first_turn(sim)
        blocks[0]["thinking"] += " (edited)"
        assert BAD_SIGNATURE in message_of(sim, body(history(blocks)))

    def test_verify_replay_wants_text_and_signature(self) -> None:
        """An empty signature passes the presence check, but not the strict replay check."""
        sim = Simulator(SimConfig(verify_replay=True))
        blocks = first_turn(sim)
        blocks[0]["signature"] = ""
        assert "came back without its signature" in message_of(sim, body(history(blocks)))
        lenient = Simulator()
        blocks = first_turn(lenient)
        blocks[0] = {"type": "thinking", "thinking": "", "signature": ""}
        assert post(lenient, body(history(blocks)))[0] == 200

    @pytest.mark.parametrize(("change", "expected"), [
        ({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "x"}]},
         "messages[0].role: unknown variant `system`"),
        ({"messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}]},
         "messages[0].content[0].type: unknown variant `image`"),
        ({"messages": [{"role": "assistant", "content": [{"type": "redacted_thinking", "data": "x"}]}]},
         "unknown variant `redacted_thinking`"),
        ({"messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]}, "unknown variant `document`"),
        ({"thinking": {"type": "disabled"}, "output_config": {"effort": "high"}}, "cannot be used together"),
        ({"output_config": {"format": {"type": "json_schema"}}}, "only output_config.effort"),
        ({"model": "claude-opus-4-7"}, "Model Not Exist"),
        ({"model": "deepseek-v4-pro[1m]"}, "Model Not Exist"),
        ({"tool_choice": {"type": "any"}}, "tool_choice forces tool use"),
    ])
    def test_400s(self, change: dict, expected: str) -> None:
        assert expected in message_of(Simulator(), {**body([{"role": "user", "content": "x"}]), **change})

    def test_ignored_parameters_are_accepted(self) -> None:
        extra = {"top_k": 5, "container": "c", "mcp_servers": [], "service_tier": "auto", "metadata": {"user_id": "u"},
                 "thinking": {"type": "enabled", "budget_tokens": 2048},
                 "tool_choice": {"type": "auto", "disable_parallel_tool_use": True}}
        messages = [{"role": "user", "content": [{"type": "text", "text": "SIM:text ok", "cache_control": {}}]}]
        assert post(Simulator(), body(messages, **extra))[0] == 200

    def test_tool_use_needs_its_result_next(self) -> None:
        sim = Simulator()
        blocks = first_turn(sim)
        messages = history(blocks)[:2] + [{"role": "user", "content": "what now?"}]
        assert "`tool_use` ids were found without `tool_result` blocks" in message_of(sim, body(messages))
