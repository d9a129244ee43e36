"""An upstream whose key env variable is not set: the client is told at once, in its own dialect,
which variable to set (never a value), and the upstream is not called. With a fallback list the
next upstream serves instead. The upstreams are the simulator server (its own process), through
the production transport.
"""

from __future__ import annotations

import anthropic
import openai
import pytest
import structlog
import trio

from tests.e2e.serving import SIM_KEY_ENV, open_gateway
from tests.resilience.dialects import wait_finished
from upstreams.simulator.testing import SimulatorProcess

VAR = "GW_TEST_UNSET_UPSTREAM_KEY"


def config(url: str) -> str:
    return f"""
upstreams:
  deepseek: {{type: openai_chat, base_url: "{url}", profile: deepseek, api_key_env: {VAR}}}
  spare: {{type: openai_chat, base_url: "{url}", profile: deepseek, api_key_env: {SIM_KEY_ENV}}}
pipelines:
  claude: {{client: anthropic, upstream: deepseek, mount: /claude}}
  codex: {{client: responses, upstream: deepseek, mount: /codex}}
  chat: {{client: chat, upstream: deepseek, mount: /chat}}
  fallback: {{client: chat, upstream: [deepseek, spare], mount: /fallback}}
"""


def ask(dialect: str, url: str) -> tuple[int, str, str]:
    """(status, error type/code, message) of the refused request."""
    prompt = "SIM:text hello"
    try:
        if dialect == "claude":
            anthropic.Anthropic(base_url=url + "/claude", api_key="k", max_retries=0).messages.create(
                model="claude-opus-5-5", max_tokens=1000, messages=[{"role": "user", "content": prompt}])
        elif dialect == "codex":
            openai.OpenAI(base_url=url + "/codex/v1", api_key="k", max_retries=0).responses.create(
                model="gpt-5.5", input=prompt, stream=False)
        else:
            openai.OpenAI(base_url=url + "/chat/v1", api_key="k", max_retries=0).chat.completions.create(
                model="deepseek-v4-pro", messages=[{"role": "user", "content": prompt}])
    except anthropic.APIStatusError as exc:
        return exc.status_code, exc.body["error"]["type"], exc.body["error"]["message"]
    except openai.APIStatusError as exc:
        return exc.status_code, exc.code or "", exc.message
    raise AssertionError("the request was served without a key")


EXPECTED = {"claude": "authentication_error", "codex": "invalid_api_key", "chat": "invalid_api_key"}


@pytest.mark.parametrize("dialect", ["claude", "codex", "chat"])
async def test_missing_key_is_an_authentication_error_naming_the_variable(
        dialect: str, sim: SimulatorProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VAR, raising=False)
    async with open_gateway(config(sim.url)) as (url, _):
        with structlog.testing.capture_logs() as logs:
            start = trio.current_time()
            status, code, message = await trio.to_thread.run_sync(ask, dialect, url)
            elapsed = trio.current_time() - start
            await wait_finished(logs)
    assert (status, code) == (401, EXPECTED[dialect])
    assert f"environment variable {VAR} is not set" in message and "'deepseek'" in message
    assert sim.chat_requests == 0  # never sent keyless, never retried
    assert elapsed < 2  # at once: no retries, no backoff
    (finished,) = [line for line in logs if line["event"] == "request_finished"]
    assert finished["attempts"] == 0 and finished["error_code"] == "authentication"


async def test_fallback_serves_when_the_first_upstream_has_no_key(sim: SimulatorProcess,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VAR, raising=False)

    def ask_fallback(url: str) -> str:
        client = openai.OpenAI(base_url=url + "/fallback/v1", api_key="k", max_retries=0)
        completion = client.chat.completions.create(model="deepseek-v4-pro",
                                                    messages=[{"role": "user", "content": "SIM:text from spare"}])
        return completion.choices[0].message.content or ""

    async with open_gateway(config(sim.url)) as (url, _):
        with structlog.testing.capture_logs() as logs:
            text = await trio.to_thread.run_sync(ask_fallback, url)
            await wait_finished(logs)
    assert text == "from spare"
    assert sim.chat_requests == 1
    skipped = [line for line in logs if line["event"] == "upstream_skipped"]
    assert [(s["upstream"], s["reason"]) for s in skipped] == [("deepseek", "api_key_missing")]
    (finished,) = [line for line in logs if line["event"] == "request_finished"]
    assert finished["upstream"] == "spare" and finished["attempts"] == 1
