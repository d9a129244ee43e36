"""Upstream 401 / 402 / 422: not retried, and mapped to each dialect's authentication / billing /
invalid-request form carrying the upstream's own message (PROTOCOLS §4.7, §5.9). The upstream is
scripted on a real socket, read through the production transport."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.serving import open_gateway
from tests.resilience.dialects import DIALECTS, UPSTREAM_MESSAGES, call, key_errors

CONFIG = """
upstreams:
  scripted:
    type: openai_chat
    base_url: ${SCRIPTED_URL}
    api_key_env: SCRIPTED_KEY
    models: {default: deepseek-v4-pro}
pipelines:
""" + "".join(f"  {d}: {{client: {d}, upstream: scripted, mount: /{d}}}\n" for d in DIALECTS)

# (dialect, upstream status) -> (client status, Anthropic error.type or OpenAI error.code)
EXPECTED = {
    ("anthropic", 401): (401, "authentication_error"),
    ("anthropic", 402): (402, "billing_error"),
    ("anthropic", 422): (422, "invalid_request_error"),
    ("responses", 401): (401, "invalid_api_key"),
    ("responses", 402): (402, "insufficient_quota"),
    ("responses", 422): (422, "invalid_request_error"),
    ("chat", 401): (401, "invalid_api_key"),
    ("chat", 402): (402, "insufficient_quota"),
    ("chat", 422): (422, "unprocessable_entity"),
}


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("status", [401, 402, 422])
async def test_upstream_client_errors_map_to_the_dialect(status: int, dialect: str,
                                                         monkeypatch: pytest.MonkeyPatch, nursery) -> None:
    """One upstream call each (no retry), the dialect's form, the upstream's message."""
    monkeypatch.setenv("SCRIPTED_KEY", "sk-scripted-key-abcd1234")
    upstream = key_errors()
    env = {"SCRIPTED_URL": await upstream.serve(nursery)}
    async with open_gateway(CONFIG, env=env) as (url, _):
        async with httpx.AsyncClient(timeout=10) as http:
            reply = await call(http, f"{url}/{dialect}", dialect, f"STATUS:{status}")
    seen = upstream.seen_keys
    assert (reply.status, reply.error_kind) == EXPECTED[(dialect, status)], reply.raw
    assert UPSTREAM_MESSAGES[status].format(tail="1234") in reply.error["message"]
    assert seen == ["sk-scripted-key-abcd1234"]
    assert "sk-scripted-key-abcd1234" not in reply.raw.decode()
