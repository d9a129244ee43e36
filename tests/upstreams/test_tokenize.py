"""Exact prompt counts from a llama.cpp-style ``/tokenize`` endpoint (``tokenize_path``).

A tiny ASGI server on 127.0.0.1 plays llama-server's tokenizer (one token per word, so the count
is checkable); the upstream's real HTTP client talks to it, and token_budget uses the exact count.
"""

from __future__ import annotations

import anthropic
import msgspec
import pytest
import trio
from hypercorn.config import Config as HyperConfig
from hypercorn.trio import serve

from pipeline.errors import GatewayError
from pipeline.model import ChatRequest, Message, TextPart
from pipeline.attempt import Attempt
from pipeline.testing import make_context
from pipeline.upstream import ModelLimits, UpstreamConfig
from stages.token_budget import TokenBudget
from tests.e2e.serving import open_gateway
from upstreams.openai_chat import OpenAIChatUpstream


async def tokenizer(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"] != "/tokenize":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    words = msgspec.json.decode(body)["content"].split()
    payload = msgspec.json.encode({"tokens": list(range(len(words)))})
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": payload})


def request(words: int) -> ChatRequest:
    return ChatRequest(model="local", messages=(Message(role="user", parts=(TextPart("w " * words),)),))


@pytest.fixture
async def upstream(nursery):
    config = HyperConfig()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = config.errorlog = None
    binds = await nursery.start(serve, tokenizer, config)
    up = OpenAIChatUpstream(UpstreamConfig(
        type="openai_chat", base_url=f"{binds[0]}/v1", profile="llamacpp", tokenize_path="/tokenize",
        limits={"local": ModelLimits(context_window=4096, max_output_tokens=1024)}), upstream_id="llama")
    await up.open()
    yield up
    await up.aclose()


async def test_exact_count_from_the_tokenizer(upstream) -> None:
    """The count is the tokenizer's, not the estimate's."""
    assert await upstream.count_tokens(request(1234), make_context()) == 1234


async def test_token_budget_uses_the_exact_count(upstream) -> None:
    """With an exact count there is no safety margin: 3,000 words fit a 4,096 window with 1,024 out."""
    stage = TokenBudget(TokenBudget.Config(thinking_floor_tokens=1024), stage_id="p.0.token_budget")
    ctx = make_context()
    ctx.aim(Attempt.aimed(upstream, "local"))
    out = await stage.on_request(request(3000), ctx)
    assert ctx.fields["prompt_estimate"] == 3000
    assert out.max_output_tokens == 1024  # 4096 - 3000 leaves room for the full 1024
    with pytest.raises(GatewayError, match=r"prompt is too long: 3500 tokens > 3072 maximum"):
        await stage.on_request(request(3500), ctx)


async def test_unreachable_tokenizer_falls_back_to_the_estimate() -> None:
    """A tokenizer that does not answer yields None (the calibrated estimate is used instead)."""
    up = OpenAIChatUpstream(UpstreamConfig(type="openai_chat", base_url="http://127.0.0.1:9/v1",
                                           tokenize_path="/tokenize", connect_timeout_s=1), upstream_id="x")
    await up.open()
    try:
        assert await up.count_tokens(request(10), make_context()) is None
    finally:
        await up.aclose()


async def test_count_tokens_endpoint_uses_the_exact_count(nursery) -> None:
    """``/v1/messages/count_tokens`` answers the count token_budget guards the window with: the
    tokenizer's, not the estimate (which would say ~650 for these 1,234 words)."""
    config = HyperConfig()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = config.errorlog = None
    binds = await nursery.start(serve, tokenizer, config)
    yaml_text = f"""
upstreams:
  llama: {{type: openai_chat, base_url: '{binds[0]}/v1', profile: llamacpp, tokenize_path: /tokenize}}
pipelines:
  claude: {{client: anthropic, upstream: llama}}
"""
    async with open_gateway(yaml_text) as (url, _):
        client = anthropic.Anthropic(base_url=url, api_key="k", max_retries=0)
        count = await trio.to_thread.run_sync(lambda: client.messages.count_tokens(
            model="local", messages=[{"role": "user", "content": "w " * 1234}]))
    assert count.input_tokens == 1234
