"""Routing by request traits, end to end: one rule per trait, each request sent by the official SDK
of its dialect to the gateway served by hypercorn on 127.0.0.1, the strict simulator server as the
upstream. Each rule names its own upstream model (``r-<rule>``), so the model the simulator
received says which rule served; the ``request_finished`` line and ``/metrics`` must say the same.
"""

from __future__ import annotations

import base64
from typing import Any

import anthropic
import httpx
import openai
import pytest
import structlog
import trio

from tests.e2e.serving import SIM, open_gateway
from tests.resilience.dialects import wait_finished
from upstreams.simulator.testing import SimulatorProcess

RULES = ("subagent", "web", "vision", "long", "background", "deep", "named", "plain")
CONFIG = f"""
upstreams:
  sim: {{{SIM}}}
  other: {{{SIM}}}
pipelines:
  claude: &routed
    client: anthropic
    mount: /claude
    stages: [thinking_filter, token_budget, tool_ids]
    upstream: sim
    routes:
      - {{name: subagent, when: {{subagent: true}}, upstream: sim, model: r-subagent}}
      - {{name: web, when: {{web_search: true}}, upstream: sim, model: r-web}}
      - {{name: vision, when: {{images: true}}, upstream: other, model: r-vision}}
      - {{name: long, when: {{prompt_tokens_over: 100000}}, upstream: [other, sim], model: r-long}}
      - {{name: background, when: {{small: true}}, upstream: sim, model: r-background}}
      - {{name: deep, when: {{effort: [xhigh, max]}}, upstream: sim, model: r-deep}}
      - {{name: named, when: {{model: ["*-mini", "claude-haiku-*"]}}, upstream: sim, model: r-named}}
      - {{name: plain, when: {{thinking: false}}, upstream: sim, model: r-plain}}
  codex: {{<<: *routed, client: responses, mount: /codex}}
  chat: {{<<: *routed, client: chat, mount: /chat, stages: [token_budget, tool_ids]}}
"""
PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 64).decode()
# About 1.2 MB of history: far past the long-context threshold (100,000 estimated tokens).
BIG = "lorem ipsum dolor sit amet " * 45_000


def claude(url: str, *, prompt: str = "SIM:text ok", content: Any = None, model: str = "claude-opus-5-5",
           thinking: bool = True, effort: str | None = None, tools: list[Any] | None = None,
           max_tokens: int = 16_000, headers: dict[str, str] | None = None) -> str:
    client = anthropic.Anthropic(base_url=url + "/claude", api_key="k", max_retries=0)
    extra: dict[str, Any] = {}
    if thinking:
        extra["thinking"] = {"type": "enabled", "budget_tokens": 4_000}
    if effort:
        extra["extra_body"] = {"output_config": {"effort": effort}}
    if tools:
        extra["tools"] = tools
    with client.messages.stream(model=model, max_tokens=max_tokens, extra_headers=headers or {},
                                messages=[{"role": "user", "content": content or prompt}], **extra) as stream:
        message = stream.get_final_message()
    return "".join(b.text for b in message.content if b.type == "text")


def codex(url: str, *, prompt: str = "SIM:text ok", content: Any = None, model: str = "gpt-5.5",
          effort: str | None = "medium", tools: list[Any] | None = None, max_output_tokens: int | None = None) -> str:
    client = openai.OpenAI(base_url=url + "/codex/v1", api_key="k", max_retries=0)
    extra: dict[str, Any] = {}
    if effort:
        extra["reasoning"] = {"effort": effort}
    if tools:
        extra["tools"] = tools
    if max_output_tokens:
        extra["max_output_tokens"] = max_output_tokens
    item = {"type": "message", "role": "user", "content": content or [{"type": "input_text", "text": prompt}]}
    with client.responses.stream(model=model, input=[item], store=False, **extra) as stream:
        return stream.get_final_response().output_text


def chat(url: str, *, prompt: str = "SIM:text ok", content: Any = None, model: str = "deepseek-v4-pro",
         effort: str | None = "high", max_tokens: int | None = None) -> str:
    client = openai.OpenAI(base_url=url + "/chat/v1", api_key="k", max_retries=0)
    extra: dict[str, Any] = {}
    if effort:
        extra["reasoning_effort"] = effort
    if max_tokens:
        extra["max_tokens"] = max_tokens
    stream = client.chat.completions.create(model=model, stream=True, **extra,
                                            messages=[{"role": "user", "content": content or prompt}])
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


# (dialect, call, expected rule): every trait in every dialect that can express it, and the default.
CASES: list[tuple[str, Any, str]] = [
    ("claude", lambda u: claude(u, headers={"x-claude-code-agent-id": "agent-7"}), "subagent"),
    ("claude", lambda u: claude(u, headers={"x-claude-code-request-class": "subagent"}), "subagent"),
    ("claude", lambda u: claude(u, tools=[{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}]),
     "web"),
    ("codex", lambda u: codex(u, tools=[{"type": "web_search"}]), "web"),
    ("claude", lambda u: claude(u, content=[{"type": "image", "source": {
        "type": "base64", "media_type": "image/png", "data": PNG.split(",", 1)[1]}},
        {"type": "text", "text": "SIM:text ok"}]), "vision"),
    ("codex", lambda u: codex(u, content=[{"type": "input_image", "image_url": PNG},
                                          {"type": "input_text", "text": "SIM:text ok"}]), "vision"),
    ("chat", lambda u: chat(u, content=[{"type": "image_url", "image_url": {"url": PNG}},
                                        {"type": "text", "text": "SIM:text ok"}]), "vision"),
    ("claude", lambda u: claude(u, prompt=BIG + "SIM:text ok"), "long"),
    ("codex", lambda u: codex(u, prompt=BIG + "SIM:text ok"), "long"),
    ("chat", lambda u: chat(u, prompt=BIG + "SIM:text ok"), "long"),
    ("claude", lambda u: claude(u, thinking=False, max_tokens=512), "background"),
    ("claude", lambda u: claude(u, headers={"x-claude-code-request-class": "auxiliary"}), "background"),
    ("codex", lambda u: codex(u, effort=None, max_output_tokens=300), "background"),
    ("chat", lambda u: chat(u, effort=None, max_tokens=100), "background"),
    ("claude", lambda u: claude(u, effort="max"), "deep"),
    ("codex", lambda u: codex(u, effort="xhigh"), "deep"),
    ("chat", lambda u: chat(u, effort="xhigh"), "deep"),
    ("claude", lambda u: claude(u, model="claude-haiku-4-5"), "named"),
    ("codex", lambda u: codex(u, model="gpt-5.5-mini"), "named"),
    ("claude", lambda u: claude(u, thinking=False), "plain"),
    ("codex", lambda u: codex(u, effort=None), "plain"),
    ("chat", lambda u: chat(u, effort=None), "plain"),
    ("claude", lambda u: claude(u), "default"),
    ("codex", lambda u: codex(u), "default"),
    ("chat", lambda u: chat(u), "default"),
]


@pytest.fixture
def routed_sim(sim: SimulatorProcess) -> SimulatorProcess:
    sim.reset(models=("deepseek-v4-pro", "deepseek-v4-flash", *(f"r-{r}" for r in RULES)))
    return sim


@pytest.mark.parametrize(("dialect", "call", "rule"), CASES, ids=[f"{d}-{r}-{i}" for i, (d, _, r) in enumerate(CASES)])
async def test_each_trait_routes_to_its_rule(dialect: str, call: Any, rule: str, routed_sim: SimulatorProcess) -> None:
    async with open_gateway(CONFIG, sim=routed_sim) as (url, _):
        with structlog.testing.capture_logs() as logs:
            text = await trio.to_thread.run_sync(call, url)
            await wait_finished(logs)
        metrics = (await trio.to_thread.run_sync(httpx.get, url + "/metrics")).text
    assert text == "ok"
    (body,) = routed_sim.requests()
    assert body["model"] == ("deepseek-v4-pro" if rule == "default" else f"r-{rule}")
    (finished,) = [line for line in logs if line["event"] == "request_finished"]
    assert finished["route"] == rule
    assert finished["upstream"] == ("other" if rule in ("vision", "long") else "sim")
    pipeline = {"claude": "claude", "codex": "codex", "chat": "chat"}[dialect]
    assert f'gateway_routed_total{{pipeline="{pipeline}",route="{rule}"}}' in metrics


async def test_first_match_wins_and_count_tokens_follows_the_route(routed_sim: SimulatorProcess) -> None:
    """A sub-agent request with an image matches two rules: the first listed serves it; the token
    count a client asks for is the routed upstream's (its model's), as the request would be sent."""
    content = [{"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                            "data": PNG.split(",", 1)[1]}}, {"type": "text", "text": "SIM:text ok"}]
    async with open_gateway(CONFIG, sim=routed_sim) as (url, _):
        with structlog.testing.capture_logs() as logs:
            text = await trio.to_thread.run_sync(
                lambda: claude(url, content=content, headers={"x-claude-code-agent-id": "a1"}))
            await wait_finished(logs)

            def count() -> int:
                client = anthropic.Anthropic(base_url=url + "/claude", api_key="k", max_retries=0)
                return client.messages.count_tokens(model="claude-opus-5-5",
                                                    messages=[{"role": "user", "content": BIG}]).input_tokens

            counted = await trio.to_thread.run_sync(count)
            await wait_finished(logs, 2)
    assert text == "ok"
    assert [b["model"] for b in routed_sim.requests()] == ["r-subagent"]
    finished = [line for line in logs if line["event"] == "request_finished"]
    assert finished[0]["route"] == "subagent"
    assert finished[1]["endpoint"] == "count_tokens" and finished[1]["upstream"] == "other"
    assert finished[1]["upstream_model"] == "r-long" and counted > 100_000
