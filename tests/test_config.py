"""pipelines.yaml loading: the shipped file, interpolation, and exact errors for broken variants."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from pipeline.config import load_config, parse_config
from pipeline.errors import ConfigError
from pipeline.registry import build_pipelines
from tests.config_helpers import BASE
from tests.conftest import ROOT


def build(text: str, env: dict[str, str] | None = None):
    env = env if env is not None else {"HOME": "/root-key-value"}
    return build_pipelines(parse_config(text, env=env), env=env)


class TestShippedConfig:
    def test_shipped_file_builds_without_any_key(self) -> None:
        """The shipped pipelines.yaml loads on a fresh machine with no environment set."""
        pipelines, upstreams = build_pipelines(load_config(ROOT / "pipelines.yaml", env={}), env={})
        assert "deepseek" in upstreams and "simulator" in upstreams
        assert pipelines["chat"].config.mount == ""
        assert all(p.config.mount == "/demo" for pid, p in pipelines.items() if pid.startswith("demo"))

    def test_check_command_passes_and_prints_orders(self) -> None:
        """`python -m pipeline check` exits 0 and prints request and response orders."""
        proc = subprocess.run([sys.executable, "-m", "pipeline", "check", str(ROOT / "pipelines.yaml")],
                              capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert "request:" in proc.stdout and "response:" in proc.stdout

    def test_check_command_names_each_upstream_by_its_configured_type(self, tmp_path) -> None:
        """A custom upstream (the README's ``custom_upstream.echo:Echo``) is shown as configured."""
        conf = tmp_path / "echo.yaml"
        conf.write_text("upstreams:\n  echo: {type: 'custom_upstream.echo:Echo'}\n"
                        "pipelines:\n  p: {client: anthropic, upstream: echo}\n")
        proc = subprocess.run([sys.executable, "-m", "pipeline", "check", str(conf)], capture_output=True,
                              text=True, cwd=ROOT, timeout=60,
                              env={"PYTHONPATH": str(ROOT / "tests" / "fixtures"), "PATH": ""})
        assert proc.returncode == 0, proc.stderr
        assert "upstream echo (custom_upstream.echo:Echo, profile openai)" in proc.stdout

    def test_every_commented_upstream_example_passes_check(self, tmp_path) -> None:
        """Each commented upstream example of the shipped file, uncommented as a user would (with a
        pipeline pointed at it), passes `python -m pipeline check` as the type and profile it says."""
        lines = (ROOT / "pipelines.yaml").read_text().splitlines()
        examples: dict[str, dict[str, str]] = {}
        out, current = [], None
        for line in lines:
            start = re.fullmatch(r"  # ([a-z_]+):", line)
            if start:
                current = start.group(1)
                examples[current] = {}
                out.append(f"  {current}:")
                continue
            if current and line.startswith("  #   "):  # a field of the example, or a line nested in one
                field = re.fullmatch(r"  #   ([a-z_]+): ?(.*)", line)
                if field:
                    examples[current][field.group(1)] = field.group(2).split(" #")[0].strip()
                out.append("    " + line[6:])
                continue
            current = None
            out.append(line)
        assert out[-1].startswith("    ") and not any(line.startswith(("upstreams:", "pipelines:"))
                                                        for line in out[out.index("pipelines:") + 1:])
        out += [f"  try_{name}: {{client: anthropic, upstream: {name}, mount: /{name}}}" for name in examples]
        conf = tmp_path / "uncommented.yaml"
        conf.write_text("\n".join(out) + "\n")
        proc = subprocess.run([sys.executable, "-m", "pipeline", "check", str(conf)], capture_output=True,
                              text=True, cwd=ROOT, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert {"deepseek_responses", "deepseek_anthropic", "anthropic", "vllm", "llamacpp", "ollama",
                "vllm_messages", "llamacpp_messages", "ollama_messages"} <= set(examples)
        for name, fields in examples.items():
            assert f"upstream {name} ({fields['type']}, profile {fields['profile']})" in proc.stdout, name

    def test_check_command_names_the_fault(self, tmp_path) -> None:
        """A broken file exits 1 and the message names pipeline, stage index and field."""
        bad = tmp_path / "bad.yaml"
        bad.write_text(BASE + "    stages:\n      - custom_stage.redact:Redact: {patternz: [x]}\n")
        proc = subprocess.run([sys.executable, "-m", "pipeline", "check", str(bad)], capture_output=True,
                              text=True, cwd=ROOT, timeout=60,
                              env={"PYTHONPATH": str(ROOT / "tests" / "fixtures"), "PATH": ""})
        assert proc.returncode == 1
        assert "pipeline 'p' stage 0 (custom_stage.redact:Redact): Object contains unknown field `patternz`" in proc.stderr


class TestInterpolation:
    def test_env_and_default(self) -> None:
        """${VAR} reads the environment; ${VAR:-x} falls back to x."""
        text = BASE.replace("type: simulator", "type: openai_chat\n    base_url: ${URL:-http://x}\n    headers: {h: '${H}'}")
        config = parse_config(text, env={"H": "v"})
        assert config.upstreams["sim"]["base_url"] == "http://x"
        assert config.upstreams["sim"]["headers"] == {"h": "v"}

    def test_missing_variable_is_named(self) -> None:
        """A missing variable without default is a startup error naming it and its path."""
        with pytest.raises(ConfigError, match=r"\$\.upstreams\.sim\.base_url: environment variable NOPE is not set"):
            parse_config(BASE.replace("type: simulator", "type: openai_chat\n    base_url: ${NOPE}"), env={})


BAD = [
    (BASE + "    colour: blue\n", "pipeline 'p': Object contains unknown field `colour`"),
    (BASE.replace("upstream: sim", "upstream: nowhere"), "pipeline 'p': unknown upstream 'nowhere' (defined: sim)"),
    (BASE + "    stages: [no_such_stage]\n", "pipeline 'p' stage 0: unknown stage 'no_such_stage'"),
    (BASE + "    stages: [nomodule:Thing]\n", "pipeline 'p' stage 0: cannot import stage 'nomodule:Thing'"),
    (BASE + "    stages: ['pipeline.model:TextPart']\n", "pipeline 'p' stage 0: 'pipeline.model:TextPart' is not a pipeline.Stage subclass"),
    (BASE + "    stages:\n      - custom_stage.redact:Redact: {patterns: ['(']}\n",
     "pipeline 'p' stage 0 (custom_stage.redact:Redact): patterns: missing ), unterminated subpattern"),
    (BASE + "    stages:\n      - custom_stage.redact:Redact: {patterns: 3}\n",
     "pipeline 'p' stage 0 (custom_stage.redact:Redact): Expected `array`, got `int` - at `$.patterns`"),
    (BASE.replace("client: chat", "client: smoke"), "pipeline 'p': unknown client 'smoke'"),
    (BASE.replace("type: simulator", "type: warp"), "upstream 'sim': unknown upstream type 'warp'"),
    (BASE.replace("type: simulator", "type: simulator\n    profile: nope"), "upstream 'sim': unknown profile 'nope'"),
    (BASE.replace("type: simulator", "type: openai_chat"), "upstream 'sim': `base_url` is required for type openai_chat"),
    (BASE + "    mount: demo\n", "pipeline 'p': mount 'demo' must start with '/'"),
    (BASE + "    api_keys_env: [GW_KEY]\n", "pipeline 'p': api_keys_env: environment variable GW_KEY is not set"),
    (BASE.replace("type: simulator", "type: simulator\n    key_passthrough: true") + "    api_keys_env: [HOME]\n",
     "pipeline 'p': api_keys_env with upstream 'sim''s key_passthrough would forward the gateway's own key upstream"),
    ("server: {metrics_require_key: true}\n" + BASE,
     "server.metrics_require_key is true but no pipeline sets api_keys_env, so no key could open /metrics"),
    ("upstreams: [1]\npipelines: {}\n", "Expected `object`, got `array` - at `$.upstreams`"),
    (BASE + "    deadline_s: 0\n", "pipeline 'p': Expected `float` > 0.0 - at `$.deadline_s`"),
    (BASE + "server: {max_json_depth: -1}\n", "Expected `int` >= 0 - at `$.server.max_json_depth`"),
    (BASE.replace("type: simulator", "type: simulator\n    max_connections: 0"),
     "upstream 'sim': Expected `int` >= 1 - at `$.max_connections`"),
    (BASE.replace("type: simulator", "type: openai_chat\n    base_url: ftp://example.com"),
     "upstream 'sim': base_url 'ftp://example.com' is not an http:// or https:// URL with a host"),
    (BASE.replace("type: simulator", "type: openai_chat\n    base_url: 'http://example.com:99999'"),
     "upstream 'sim': base_url 'http://example.com:99999' is not an http:// or https:// URL with a host"),
    (BASE.replace("client: chat", "client: anthropic") + "  q: {client: anthropic, upstream: sim}\n",
     "pipeline 'q': POST /v1/messages is already served by pipeline 'p'"),
    ("just text", "the top level must be a mapping"),
    ("server: {body_timeout_s: 0}\n" + BASE, "Expected `float` > 0.0 - at `$.server.body_timeout_s`"),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[m[:40] for _, m in BAD])
def test_bad_config_names_the_fault(text: str, message: str) -> None:
    """Each broken variant fails at startup with a message that names the exact fault."""
    with pytest.raises(ConfigError) as info:
        build(text)
    assert message in str(info.value)


def test_clients_share_models_route_and_one_client_serves_two_mounts() -> None:
    """/v1/models is shared by the three clients on one mount (answered by header); one client
    twice is fine on two mounts."""
    text = BASE + "  a: {client: anthropic, upstream: sim}\n  r: {client: responses, upstream: sim}\n" \
        "  p2: {client: chat, upstream: sim, mount: /two}\n"
    pipelines, _ = build(text)
    assert sorted(pipelines) == ["a", "p", "p2", "r"]


def test_custom_stage_by_module_attr() -> None:
    """An operator stage resolves by module:attr and validates its own options."""
    pipelines, _ = build(BASE + "    stages:\n      - custom_stage.redact:Redact: {patterns: ['sk-\\\\w+']}\n")
    stage = pipelines["p"].stages[0]
    assert stage.id == "p.0.redact"
    assert pipelines["p"].request_order() == ["p.0.redact"]
    assert pipelines["p"].response_order() == ["p.0.redact"]
