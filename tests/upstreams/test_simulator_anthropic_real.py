"""The simulator's real-Anthropic flavour of ``POST /anthropic/v1/messages``
(``SimConfig.messages_flavour = "anthropic"``): its own verified signatures and redacted_thinking,
what the real API accepts where DeepSeek's endpoint refuses, and Anthropic-shaped errors."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from tests.upstreams.anthropic_helpers import BASH, first_turn, history, post
from upstreams.simulator import Simulator
from upstreams.simulator.anthropic_validate import BAD_REDACTED, BAD_SIGNATURE, endpoint_secret, redact, sign
from upstreams.simulator.config import SimConfig

REAL = SimConfig(messages_flavour="anthropic")
IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
DOCUMENT = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "notes"}}


def body(messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"model": "claude-opus-4-7", "max_tokens": 16000, "messages": messages, "tools": [BASH], "stream": True,
            "thinking": {"type": "enabled", "budget_tokens": 8000}, **extra}


def real_first_turn(sim: Simulator) -> list[dict[str, Any]]:
    return first_turn(sim, body)


def test_its_own_signature_and_redacted_thinking_go_back() -> None:
    sim = Simulator(REAL)
    blocks = real_first_turn(sim)
    assert blocks[0]["type"] == "thinking"
    assert blocks[0]["signature"] == sign(endpoint_secret(REAL), blocks[0]["thinking"])
    minted = {"type": "redacted_thinking", "data": redact(endpoint_secret(REAL), "hidden reasoning")}
    status, events = post(sim, body(history([blocks[0], minted, *blocks[1:]])))
    assert status == 200 and events[-1]["type"] == "message_stop"


def test_sim_redact_answers_redacted_thinking_that_must_come_back_exactly() -> None:
    """``SIM:redact``: a redacted_thinking block of this endpoint's own after the thinking block
    (thinking on, this flavour only); under verify_replay the tool turn must bring it back exactly,
    in its place: left out, moved or another minted one is a 400."""
    sim = Simulator(msgspec.structs.replace(REAL, verify_replay=True))
    prompt = "SIM:redact the hidden plan\nSIM:script shell ls ;; text done"
    blocks = first_turn(sim, body, prompt)
    minted = redact(endpoint_secret(REAL), "the hidden plan")
    assert [b["type"] for b in blocks] == ["thinking", "redacted_thinking", "text", "tool_use"]
    assert blocks[1] == {"type": "redacted_thinking", "data": minted}
    assert post(sim, body(history(blocks, prompt)))[0] == 200
    other = {"type": "redacted_thinking", "data": redact(endpoint_secret(REAL), "another plan")}
    for changed in ([blocks[0], *blocks[2:]], [blocks[1], blocks[0], *blocks[2:]], [blocks[0], other, *blocks[2:]]):
        status, error = post(sim, body(history(changed, prompt)))
        assert status == 400 and "did not come back exactly" in error["error"]["message"], error
    deepseek = Simulator(SimConfig(verify_replay=True))
    plain = first_turn(deepseek, lambda m: {**body(m), "model": "deepseek-v4-pro"}, prompt)
    assert "redacted_thinking" not in [b["type"] for b in plain]


@pytest.mark.parametrize("change, message", [
    (lambda b: {**b, "signature": ""}, BAD_SIGNATURE),
    (lambda b: {**b, "signature": sign(endpoint_secret(SimConfig()), b["thinking"])}, BAD_SIGNATURE),  # DeepSeek's
    (lambda b: {**b, "thinking": b["thinking"] + " "}, BAD_SIGNATURE),
    (lambda b: {"type": "redacted_thinking", "data": redact(b"another key", "x")}, BAD_REDACTED),
])
def test_a_foreign_or_missing_token_is_a_400(change: Any, message: str) -> None:
    sim = Simulator(REAL)
    blocks = real_first_turn(sim)
    status, error = post(sim, body(history([change(blocks[0]), *blocks[1:]])))
    assert status == 400 and error["type"] == "error" and message in error["error"]["message"]


def test_only_the_final_tool_turn_must_start_with_thinking() -> None:
    sim = Simulator(REAL)
    blocks = real_first_turn(sim)
    earlier = history(blocks[1:])  # an earlier tool turn without its thinking: accepted
    then = [{"role": "assistant", "content": [{"type": "text", "text": "more"}]},
            {"role": "user", "content": "SIM:text done"}]
    assert post(sim, body([*earlier, *then]))[0] == 200
    status, error = post(sim, body(history(blocks[1:])))
    assert status == 400 and "Expected `thinking` or `redacted_thinking`, but found `text`" in \
        error["error"]["message"]


@pytest.mark.parametrize("extra", [
    {"messages": [{"role": "user", "content": [{"type": "text", "text": "SIM:text ok"}, IMAGE, DOCUMENT]}]},
    {"output_config": {"effort": "low", "format": {"type": "json_schema", "schema": {"type": "object"}}}},
    {"thinking": {"type": "disabled"}, "output_config": {"effort": "low"}},
])
def test_what_deepseek_refuses_the_real_api_accepts(extra: dict[str, Any]) -> None:
    messages = extra.pop("messages", [{"role": "user", "content": "SIM:text ok"}])
    assert post(Simulator(REAL), body(messages, **extra))[0] == 200
    deepseek = {**body(messages, **extra), "model": "deepseek-v4-pro"}
    assert post(Simulator(SimConfig()), deepseek)[0] == 400


def test_sampling_the_real_api_takes() -> None:
    """Thinking on: temperature 1 and top_p from 0.95; thinking off: any temperature up to 1, top_k."""
    request = body([{"role": "user", "content": "SIM:text ok"}])
    for extra in ({"temperature": 1, "top_p": 0.95}, {"thinking": {"type": "disabled"}, "temperature": 0.2,
                                                      "top_p": 0.5, "top_k": 40}):
        assert post(Simulator(REAL), {**request, **extra})[0] == 200


@pytest.mark.parametrize("extra, status, message", [
    ({"model": "claude-opus-4-7[1m]"}, 404, "model: claude-opus-4-7[1m]"),
    ({"model": "deepseek-v4-pro"}, 404, "model: deepseek-v4-pro"),
    ({"thinking": {"type": "enabled", "budget_tokens": 512}}, 400, "greater than or equal to 1024"),
    ({"thinking": {"type": "enabled", "budget_tokens": 16000}}, 400, "`max_tokens` must be greater than"),
    ({"thinking": {"type": "enabled"}}, 400, "budget_tokens"),
    ({"messages": [{"role": "system", "content": "x"}]}, 400, "role"),
    ({"temperature": 1.5, "thinking": {"type": "disabled"}}, 400, "Invalid temperature value"),
    ({"temperature": 0.2}, 400, "`temperature` may only be set to 1 when thinking is enabled"),
    ({"top_k": 40}, 400, "`top_k` may not be set when thinking is enabled"),
    ({"top_p": 0.5}, 400, "`top_p` must be at least 0.95 when thinking is enabled"),
])
def test_what_the_real_api_refuses(extra: dict[str, Any], status: int, message: str) -> None:
    request = body([{"role": "user", "content": "SIM:text ok"}])
    got, error = post(Simulator(REAL), {**request, **extra})
    assert got == status and error["type"] == "error" and message in error["error"]["message"], error
