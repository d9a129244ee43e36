"""Fallback end to end: the first upstream refuses connections, the second serves, and the request
it gets is shaped for it (its model name, its 16,384-token window and 4,096 max output), not for the
first. The gateway is served by hypercorn on 127.0.0.1, the official SDKs are the clients, both
upstreams are ``openai_chat`` through the production transport, and the second is the strict
simulator server (its own process): a request shaped for the first upstream (``max_tokens``
32,000) is a 400 there.
"""

from __future__ import annotations

import socket

import anthropic
import openai
import pytest
import structlog
import trio

from tests.e2e.serving import SIM_KEY_ENV, open_gateway
from tests.resilience.dialects import wait_finished
from upstreams.simulator.testing import SimulatorProcess

WINDOW, MAX_OUT, ASKED = 16_384, 4_096, 32_000


def closed_port() -> int:
    """A port on 127.0.0.1 that refuses connections (bound once, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def config(local_url: str) -> str:
    return f"""
upstreams:
  primary:
    type: openai_chat
    base_url: http://127.0.0.1:{closed_port()}
    profile: deepseek
    connect_timeout_s: 2
    models: {{default: deepseek-v4-pro}}
  local:
    type: openai_chat
    base_url: {local_url}
    profile: deepseek
    api_key_env: {SIM_KEY_ENV}
    models: {{default: local-16k}}
    limits: {{local-16k: {{context_window: {WINDOW}, max_output_tokens: {MAX_OUT}}}}}
pipelines:
  claude: {{client: anthropic, upstream: [primary, local], stages: [thinking_filter, token_budget, tool_ids],
           mount: /claude, retry: {{attempts_per_upstream: 2, backoff_base_s: 0.01}}}}
  codex: {{client: responses, upstream: [primary, local], stages: [thinking_filter, token_budget, tool_ids],
          mount: /codex, retry: {{attempts_per_upstream: 2, backoff_base_s: 0.01}}}}
  chat: {{client: chat, upstream: [primary, local], stages: [thinking_filter, token_budget, tool_ids],
         mount: /chat, retry: {{attempts_per_upstream: 2, backoff_base_s: 0.01}}}}
"""


def ask(dialect: str, url: str) -> str:
    prompt = "SIM:text served by the fallback"
    if dialect == "claude":
        client = anthropic.Anthropic(base_url=url + "/claude", api_key="k", max_retries=0)
        with client.messages.stream(model="claude-opus-5-5", max_tokens=ASKED,
                                    messages=[{"role": "user", "content": prompt}]) as stream:
            message = stream.get_final_message()
        return "".join(block.text for block in message.content if block.type == "text")
    if dialect == "codex":
        client = openai.OpenAI(base_url=url + "/codex/v1", api_key="k", max_retries=0)
        response = client.responses.create(model="gpt-5.5", max_output_tokens=ASKED, input=prompt)
        return response.output_text
    client = openai.OpenAI(base_url=url + "/chat/v1", api_key="k", max_retries=0)
    completion = client.chat.completions.create(model="deepseek-v4-pro", max_tokens=ASKED,
                                                messages=[{"role": "user", "content": prompt}])
    return completion.choices[0].message.content or ""


def local_16k(sim: SimulatorProcess) -> str:
    """The simulator server as a 16K-window local model; returns its URL."""
    sim.reset(models=("local-16k",), context_window=WINDOW, max_output_tokens=MAX_OUT)
    return sim.url


@pytest.mark.parametrize("dialect", ["claude", "codex", "chat"])
async def test_fallback_gets_a_request_shaped_for_it(dialect: str, sim: SimulatorProcess) -> None:
    async with open_gateway(config(local_16k(sim))) as (url, _):
        with structlog.testing.capture_logs() as logs:
            text = await trio.to_thread.run_sync(ask, dialect, url)
            await wait_finished(logs)
    assert text == "served by the fallback"
    (body,) = sim.requests()  # the primary never answered; the fallback got exactly one request
    assert body["model"] == "local-16k"
    assert body["max_tokens"] == MAX_OUT  # 32,000 clamped to the fallback's max output, not DeepSeek's
    (finished,) = [line for line in logs if line["event"] == "request_finished"]
    assert finished["upstream"] == "local" and finished["upstream_model"] == "local-16k"
    assert finished["attempts"] == 3  # two refused connections to the primary, then the fallback
    assert finished["status"] == 200
    assert finished["losses"] == [f"max_tokens_clamped: {ASKED} clamped to the model's max output {MAX_OUT}"]


async def test_a_long_prompt_fits_the_fallbacks_window_or_is_not_sent(sim: SimulatorProcess) -> None:
    """A prompt that fits DeepSeek's window but not the fallback's is never sent to the fallback:
    the client gets the primary's failure (it retries), not a context error for the smaller
    window (which would make Claude Code compact a session that fits its real model)."""
    local_url = local_16k(sim)
    words = " ".join(f"w{i}" for i in range(30_000))

    def ask_long(url: str) -> anthropic.APIStatusError:
        client = anthropic.Anthropic(base_url=url + "/claude", api_key="k", max_retries=0)
        with pytest.raises(anthropic.APIStatusError) as caught:
            with client.messages.stream(model="claude-opus-5-5", max_tokens=ASKED,
                                        messages=[{"role": "user", "content": words + " SIM:text no"}]) as stream:
                stream.get_final_message()
        return caught.value

    async with open_gateway(config(local_url)) as (url, _):
        with structlog.testing.capture_logs() as logs:
            error = await trio.to_thread.run_sync(ask_long, url)
            await wait_finished(logs)
    assert not sim.requests() and sim.chat_requests == 0
    assert error.status_code == 529 and error.body["error"]["type"] == "overloaded_error"
    skipped = [line for line in logs if line["event"] == "upstream_skipped"]
    assert skipped and skipped[0]["upstream"] == "local" and skipped[0]["reason"] == "context_length_exceeded"
