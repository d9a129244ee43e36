"""One table of model limits, the same numbers everywhere a client can read them.

For DeepSeek V4 as the table has it, and with an upstream's ``limits:`` override: ``/v1/models``
through both official SDKs, the token budget's clamp (what the upstream receives as
``max_tokens``), ``count_tokens`` against the budget's own estimate, the Codex catalog and the
Claude Code settings ``python -m pipeline setup`` writes, all report the same window and output.
"""

from __future__ import annotations

from pathlib import Path

import anthropic
import msgspec
import openai
import pytest
import structlog
import trio

from pipeline import setup
from pipeline.model_limits import DEEPSEEK_PROFILES, MODELS, model_card
from pipeline.profiles import PROFILES
from tests.e2e.serving import SIM, open_gateway
from tests.resilience.dialects import finished_lines, wait_finished

CONFIG = """
upstreams:
  sim: {%s%s}
pipelines:
  claude: {client: anthropic, upstream: sim, stages: [thinking_filter, token_budget, tool_ids]}
  codex: {client: responses, upstream: sim, stages: [thinking_filter, token_budget, tool_ids]}
  chat: {client: chat, upstream: sim, stages: [token_budget, tool_ids]}
"""
PRO = MODELS["deepseek-v4-pro"]
OVERRIDE = ", limits: {deepseek-v4-pro: {context_window: 200000, max_output_tokens: 8192}}"


def config(override: str) -> str:
    return CONFIG % (SIM, override)


def sdk_views(url: str) -> dict[str, tuple[int, int]]:
    """(window, max output) of deepseek-v4-pro as each SDK reads /v1/models."""
    claude = anthropic.Anthropic(base_url=url, api_key="k", max_retries=0)
    a = next(m for m in claude.models.list().data if m.id == "deepseek-v4-pro")
    chat = openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0)
    o = next(m for m in chat.models.list().data if m.id == "deepseek-v4-pro").to_dict()
    return {"anthropic": (a.max_input_tokens, a.max_tokens), "openai": (o["context_window"], o["max_output_tokens"])}


@pytest.mark.parametrize(("override", "window", "output", "edited"), [
    ("", PRO.context_window, PRO.max_output_tokens, False),
    ("", 777_777, 55_555, True),
    (OVERRIDE, 200_000, 8_192, False),
], ids=["table", "table_edited", "limits_override"])
async def test_every_reader_reports_the_same_limits(override, window, output, edited, sim, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """``table_edited``: a different figure in the table (and only there) reaches every reader."""
    if edited:
        monkeypatch.setitem(MODELS, "deepseek-v4-pro", msgspec.structs.replace(
            PRO, context_window=window, max_output_tokens=output))
    async with open_gateway(config(override), sim=sim) as (url, _):
        views = await trio.to_thread.run_sync(sdk_views, url)
        chat = openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0)
        await trio.to_thread.run_sync(lambda: chat.chat.completions.create(
            model="deepseek-v4-pro", max_tokens=10_000_000, messages=[{"role": "user", "content": "hi"}]))
    assert views == {"anthropic": (window, output), "openai": (window, output)}
    assert sim.requests(last=1)[0]["max_tokens"] == output  # the budget clamped to the same max output

    path = tmp_path / "pipelines.yaml"
    path.write_text(config(override))
    monkeypatch.setenv("SIM_URL", sim.url)
    codex = setup.served(str(path), "responses", host="127.0.0.1", port=8000, pipeline_id=None)
    entry = next(m for m in setup.codex_catalog(codex)["models"] if m["slug"] == "deepseek-v4-pro")
    assert entry["context_window"] == entry["max_context_window"] == window
    claude = setup.claude_env(setup.served(str(path), "anthropic", host="127.0.0.1", port=8000, pipeline_id=None))
    assert claude["ANTHROPIC_MODEL"] == "deepseek-v4-pro"
    assert claude["CLAUDE_CODE_MAX_CONTEXT_TOKENS"] == claude["CLAUDE_CODE_AUTO_COMPACT_WINDOW"] == str(window)


async def test_count_tokens_is_the_budgets_count(sim) -> None:
    """count_tokens answers what token_budget guards the window with, for the same request."""
    messages = [{"role": "user", "content": "The quick brown fox jumps over the lazy dog. " * 300}]

    def calls(url: str) -> int:
        client = anthropic.Anthropic(base_url=url, api_key="k", max_retries=0)
        counted = client.messages.count_tokens(model="claude-opus-5-5", messages=messages).input_tokens
        client.messages.create(model="claude-opus-5-5", max_tokens=1024, messages=messages)
        return counted

    async with open_gateway(config(""), sim=sim) as (url, _):
        with structlog.testing.capture_logs() as logs:
            counted = await trio.to_thread.run_sync(calls, url)
            await wait_finished(logs, 2)
    generate = [line for line in finished_lines(logs) if line["endpoint"] == "generate"]
    assert generate and generate[0]["prompt_estimate"] == counted


@pytest.mark.parametrize("profile", DEEPSEEK_PROFILES)
def test_the_encoders_read_the_table(profile: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each upstream encoder takes a model's capabilities from the table, not from the profile:
    with the table edited (Pro given vision and forced tool choice while thinking), each sends
    Pro an image and a forced tool_choice with thinking on; as the table has it, a placeholder and
    the forced choice with thinking off. The same profile serves Flash with its image."""
    from pipeline.model import ChatRequest, ImagePart, Message, TextPart, ThinkingConfig, ToolChoice, ToolSpec
    from pipeline.model_limits import card_for
    from pipeline.protocols.anthropic.upstream_encode import encode_request as messages_body
    from pipeline.protocols.chat import encode_request as chat_body
    from pipeline.protocols.responses.upstream_encode import encode_request as responses_body

    encoders = {"deepseek": chat_body, "deepseek_anthropic": messages_body, "deepseek_responses": responses_body}
    request = ChatRequest(model="m", thinking=ThinkingConfig(enabled=True), tools=(ToolSpec(name="Read"),),
                          tool_choice=ToolChoice(mode="tool", name="Read"), messages=(Message(role="user", parts=(
                              TextPart("look"), ImagePart(url="data:image/png;base64,iVBORw0KGgo="))),))

    def sent(model: str) -> tuple[str, list[str]]:
        losses: list[str] = []
        extra = {} if profile == "deepseek" else {"upstream_id": "u"}
        body = encoders[profile](request, model=model, profile=PROFILES[profile],
                                 lose=lambda what, _detail: losses.append(what), **extra).decode()
        return body, losses

    prof = PROFILES[profile]
    assert card_for("deepseek-v4-pro", prof) is PRO
    body, losses = sent("deepseek-v4-pro")
    assert "iVBORw0KGgo" not in body and "image omitted" in body and "image" in losses
    assert "thinking_off" in losses and "Read" in body
    assert "iVBORw0KGgo" in sent("deepseek-v4-flash")[0] or not prof.images  # DeepSeek's Anthropic format: none
    monkeypatch.setitem(MODELS, "deepseek-v4-pro", msgspec.structs.replace(
        PRO, vision=True, forced_tool_choice_with_thinking=True))
    body, losses = sent("deepseek-v4-pro")
    assert "thinking_off" not in losses
    assert ("iVBORw0KGgo" in body) is prof.images


@pytest.mark.parametrize("profile", DEEPSEEK_PROFILES)
def test_each_deepseek_format_reads_the_table(profile: str) -> None:
    """DeepSeek's Chat, Responses and Anthropic endpoints serve the same models: one entry each;
    a local server's weights of the same name are not DeepSeek's API and keep their profile's."""
    assert model_card("deepseek-v4-pro", profile) is PRO
    assert PROFILES[profile].name == profile
    assert model_card("deepseek-v4-pro", "llamacpp") is None
