"""Over the window: each client gets its own context-length error, from our guard or the upstream's.

With token_budget on, an oversize prompt never reaches the upstream. Without it, the simulator's
own "maximum context length" 400 is mapped to the same dialect forms, so the client compacts.
"""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.serving import SIM, open_gateway

CONFIG = """
upstreams:
  small: {{%s, limits: {{deepseek-v4-pro: {{context_window: 8192, max_output_tokens: 2048}}}}}}
pipelines:
  a: {{mount: /a, client: anthropic, upstream: small, stages: [{stages}]}}
  r: {{mount: /r, client: responses, upstream: small, stages: [{stages}]}}
  c: {{mount: /c, client: chat, upstream: small, stages: [{stages}]}}
""" % SIM.replace("{", "{{").replace("}", "}}")

BIG = "lorem ipsum dolor " * 3000  # ~14k tokens: over an 8k window


def requests_for(big: str) -> dict[str, tuple[str, dict]]:
    return {
        "anthropic": ("/a/v1/messages", {"model": "m", "max_tokens": 512, "stream": True,
                                         "messages": [{"role": "user", "content": big}]}),
        "responses": ("/r/v1/responses", {"model": "m", "input": big, "stream": True}),
        "chat": ("/c/v1/chat/completions", {"model": "m", "stream": True, "max_tokens": 512,
                                            "messages": [{"role": "user", "content": big}]}),
    }


@pytest.mark.parametrize("stages", ["token_budget", ""], ids=["gateway_guard", "upstream_400"])
async def test_context_length_in_each_dialect(stages: str, sim) -> None:
    """Anthropic: 400 'prompt is too long'; Responses and Chat: context_length_exceeded."""
    sim.reset(context_window=8192)
    async with open_gateway(CONFIG.format(stages=stages), sim=sim) as (url, _):
        async with httpx.AsyncClient(timeout=10) as http:
            got = {name: await http.post(url + path, json=body) for name, (path, body) in requests_for(BIG).items()}
    reached = sim.chat_requests
    for response in got.values():
        assert response.status_code == 400, response.text
    anthropic = got["anthropic"].json()
    assert anthropic["error"]["type"] == "invalid_request_error"
    assert anthropic["error"]["message"].startswith("prompt is too long")
    assert got["responses"].json()["error"]["code"] == "context_length_exceeded"
    assert got["chat"].json()["error"]["code"] == "context_length_exceeded"
    assert reached == (0 if stages else 3)
