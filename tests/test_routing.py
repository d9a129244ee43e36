"""Routing rules as data: validation of ``routes:`` (errors name the pipeline, the rule and the
field), ``python -m pipeline check`` printing them in order, and each trait read off requests as
the three client codecs decode them (the end-to-end cases are in tests/e2e/test_routing.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.config import RouteWhen, parse_config
from pipeline.errors import ConfigError
from pipeline.protocols.anthropic.client_decode import decode_request as anthropic_request
from pipeline.protocols.chat.client_decode import decode_chat_request as chat_request
from pipeline.protocols.responses.client_decode import decode_request as responses_request
from pipeline.routing import SMALL_MAX_OUTPUT_TOKENS, Traits, matches
from tests.config_helpers import BASE

ROUTED = BASE.replace("  sim:\n    type: simulator\n", "  sim:\n    type: simulator\n  big:\n    type: simulator\n") + """\
    routes:
      - {name: long, when: {prompt_tokens_over: 50000}, upstream: big, model: deepseek-v4-flash}
      - {name: vision, when: {images: true, model: "gpt-*"}, upstream: [big, sim]}
"""


def anthropic(**fields: object) -> Traits:
    body = {"model": "claude-opus-5-5", "max_tokens": 16_000, "messages": [{"role": "user", "content": "hi"}], **fields}
    return Traits(anthropic_request(json.dumps(body).encode())[0], {})


def responses(**fields: object) -> Traits:
    return Traits(responses_request(json.dumps({"model": "gpt-5.5", "input": "hi", **fields}).encode())[0], {})


def chat(**fields: object) -> Traits:
    body = {"model": "deepseek-v4-pro", "messages": [{"role": "user", "content": "hi"}], **fields}
    return Traits(chat_request(json.dumps(body).encode())[0], {})


class TestConfig:
    @pytest.mark.parametrize(("text", "message"), [
        (ROUTED.replace("upstream: big, model", "upstream: nowhere, model"),
         "pipeline 'p': routes[0] ('long'): unknown upstream 'nowhere' (defined: big, sim)"),
        (ROUTED.replace("name: vision", "name: long"), "pipeline 'p': routes[1] ('long'): the name is already used"),
        (ROUTED.replace("name: vision", "name: default"), "routes[1] ('default'): the name is already used"),
        (ROUTED.replace("images: true", "colour: blue"), "Object contains unknown field `colour` - at `$.routes[1].when`"),
        (ROUTED.replace("prompt_tokens_over: 50000", "prompt_tokens_over: -1"),
         "Expected `int` >= 0 - at `$.routes[0].when.prompt_tokens_over`"),
        (ROUTED.replace("upstream: [big, sim]", "upstream: []"), "routes[1] ('vision'): `upstream` is empty"),
        (ROUTED.replace("{name: long, ", "{"), "Object missing required field `name` - at `$.routes[0]`"),
    ])
    def test_a_bad_rule_is_refused_naming_it(self, text: str, message: str) -> None:
        with pytest.raises(ConfigError) as caught:
            parse_config(text, env={})
        assert message in str(caught.value)

    def test_check_prints_the_rules_in_order(self, tmp_path: Path) -> None:
        conf = tmp_path / "routed.yaml"
        conf.write_text(ROUTED)
        proc = subprocess.run([sys.executable, "-m", "pipeline", "check", str(conf)], capture_output=True, text=True,
                              check=False)
        assert proc.returncode == 0, proc.stderr
        routes = proc.stdout.split("  routes:\n", 1)[1].splitlines()
        assert routes == [
            "    1. long: prompt_tokens_over=50000 => big (model deepseek-v4-flash)",
            "    2. vision: model=gpt-*, images=True => big -> sim",
            "    3. default: every request => sim",
        ]


class TestTraits:
    def test_small_is_a_tool_less_thinking_less_short_answer(self) -> None:
        assert anthropic(max_tokens=SMALL_MAX_OUTPUT_TOKENS).small
        assert not anthropic(max_tokens=SMALL_MAX_OUTPUT_TOKENS + 1).small
        assert not anthropic(max_tokens=500, thinking={"type": "enabled", "budget_tokens": 1024}).small
        assert not anthropic(max_tokens=500, tools=[{"name": "Bash", "input_schema": {"type": "object"}}]).small
        assert responses(max_output_tokens=300).small and not responses().small  # no limit: not small
        assert chat(max_tokens=100).small and not chat(max_tokens=100, reasoning_effort="high").small

    def test_claude_codes_request_class_decides_when_present(self) -> None:
        request = anthropic_request(json.dumps({"model": "m", "max_tokens": 100, "messages": []}).encode())[0]
        assert not Traits(request, {"x-claude-code-request-class": "main"}).small
        assert Traits(request, {"x-claude-code-request-class": "auxiliary"}).small
        assert Traits(request, {"x-claude-code-request-class": "workflow"}).subagent
        assert Traits(request, {"x-claude-code-agent-id": "a"}).subagent and not Traits(request, {}).subagent

    def test_thinking_and_effort_as_each_dialect_asks(self) -> None:
        assert anthropic(thinking={"type": "enabled", "budget_tokens": 2048}).thinking
        assert not anthropic().thinking and not anthropic(thinking={"type": "disabled"}).thinking
        assert anthropic(thinking={"type": "adaptive"}, output_config={"effort": "max"}).effort == "max"
        assert responses(reasoning={"effort": "high"}).thinking and not responses(reasoning={"effort": "none"}).thinking
        assert chat(reasoning_effort="low").effort == "low" and not chat().thinking

    def test_images_are_found_in_tool_results_too(self) -> None:
        image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
        messages = [{"role": "user", "content": "read it"},
                    {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Read", "input": {}}]},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [image]}]}]
        assert anthropic(messages=messages).images and not anthropic().images

    def test_web_search_is_the_hosted_tool_only(self) -> None:
        assert anthropic(tools=[{"type": "web_search_20250305", "name": "web_search"}]).web_search
        assert not anthropic(tools=[{"name": "web_search", "input_schema": {"type": "object"}}]).web_search
        assert responses(tools=[{"type": "web_search", "search_context_size": "low"}]).web_search

    def test_model_globs_ignore_the_1m_marker(self) -> None:
        traits = anthropic(model="claude-opus-5-5[1m]")
        assert traits.model("claude-opus-*") and traits.model(["x", "claude-opus-5-5[1m]"])
        assert not traits.model("claude-haiku-*")

    def test_every_given_trait_must_hold(self) -> None:
        traits = anthropic(max_tokens=100)
        assert matches(RouteWhen(small=True, model="claude-*"), traits)
        assert not matches(RouteWhen(small=True, model="gpt-*"), traits)
        assert matches(RouteWhen(), traits)  # no trait given: every request
        assert not matches(RouteWhen(prompt_tokens_over=1), anthropic(messages=[]))


def test_the_readme_example_is_valid(tmp_path: Path) -> None:
    """The README's routing example passes ``check`` and lists every trait."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("### Routing by request traits", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    conf = tmp_path / "example.yaml"
    conf.write_text(example)
    proc = subprocess.run([sys.executable, "-m", "pipeline", "check", str(conf)], capture_output=True, text=True,
                          check=False, env={"DEEPSEEK_API_KEY": "k", "PATH": ""})
    assert proc.returncode == 0, proc.stderr
    printed = proc.stdout.split("  routes:\n", 1)[1]
    for trait in RouteWhen.__struct_fields__:
        assert f"{trait}=" in printed, trait
    assert printed.splitlines()[-1] == "    8. default: every request => deepseek"
