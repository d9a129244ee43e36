"""``python -m pipeline setup claude|codex``: the command a user runs, on the shipped pipelines.yaml
and on variants (a gateway key, a mount, no pipeline for the client). The real clients reading
what it writes are in tests/clients/test_setup_clients.py."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from pipeline.model_limits import MODELS

ROOT = Path(__file__).resolve().parent.parent
# The fields Codex 0.169.0 refuses a catalog entry without (found by feeding `codex debug models`
# entries one field short), plus the ones that make a model first-class.
CODEX_REQUIRED = {"slug", "display_name", "supported_reasoning_levels", "shell_type", "visibility",
                  "supported_in_api", "priority", "base_instructions", "supports_reasoning_summaries",
                  "support_verbosity", "truncation_policy", "supports_parallel_tool_calls",
                  "experimental_supported_tools", "apply_patch_tool_type", "context_window"}
KEYED = """
upstreams:
  ds: {type: openai_chat, base_url: 'http://127.0.0.1:9', profile: deepseek,
       models: {default: deepseek-v4-pro, deepseek-v4-flash: deepseek-v4-flash, "claude-*haiku*": deepseek-v4-flash}}
pipelines:
  c: {mount: /team, client: anthropic, upstream: ds, api_keys_env: [TEAM_KEY]}
  r: {mount: /team, client: responses, upstream: ds, api_keys_env: [TEAM_KEY]}
"""


def setup_cmd(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline", "setup", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={"PATH": "/usr/bin:/bin", **(env or {})})


def exports(text: str) -> dict[str, str]:
    return {k.removeprefix("export "): v.strip("'\"") for k, v in
            (line.split("=", 1) for line in text.splitlines() if line.startswith("export "))}


def test_claude_on_the_shipped_file() -> None:
    done = setup_cmd("claude", "--port", "8123")
    assert done.returncode == 0, done.stderr
    env = exports(done.stdout)
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:8123"
    assert env["ANTHROPIC_AUTH_TOKEN"]
    assert env["ANTHROPIC_MODEL"] == env["ANTHROPIC_DEFAULT_OPUS_MODEL"] == "deepseek-v4-pro"
    assert env["ANTHROPIC_DEFAULT_HAIKU_MODEL"] == env["ANTHROPIC_SMALL_FAST_MODEL"] == "deepseek-v4-flash"
    assert env["CLAUDE_CODE_MAX_CONTEXT_TOKENS"] == str(MODELS["deepseek-v4-pro"].context_window)
    for opt_out in ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "DISABLE_TELEMETRY", "DISABLE_ERROR_REPORTING",
                    "DISABLE_AUTOUPDATER"):
        assert env[opt_out] == "1"


def test_claude_write_merges_into_settings(tmp_path: Path) -> None:
    settings = tmp_path / ".claude" / "settings.json"
    settings.parent.mkdir()
    settings.write_text(json.dumps({"theme": "dark", "env": {"MY_VAR": "x"}}))
    done = setup_cmd("claude", "--write", str(settings))
    assert done.returncode == 0, done.stderr
    written = json.loads(settings.read_text())
    assert written["theme"] == "dark" and written["env"]["MY_VAR"] == "x"
    assert written["env"]["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:8000"
    assert written["model"] == "deepseek-v4-pro"


def test_a_gateway_key_is_named_not_invented(tmp_path: Path) -> None:
    config = tmp_path / "p.yaml"
    config.write_text(KEYED)
    printed = setup_cmd("claude", "--config", str(config))
    assert printed.returncode == 0, printed.stderr
    assert exports(printed.stdout)["ANTHROPIC_AUTH_TOKEN"] == "${TEAM_KEY}"
    assert exports(printed.stdout)["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:8000/team"
    refused = setup_cmd("claude", "--config", str(config), "--write", str(tmp_path / "s.json"))
    assert refused.returncode == 1 and "TEAM_KEY" in refused.stderr and not (tmp_path / "s.json").exists()
    written = setup_cmd("claude", "--config", str(config), "--write", str(tmp_path / "s.json"),
                        env={"TEAM_KEY": "k-123"})
    assert written.returncode == 0, written.stderr
    assert json.loads((tmp_path / "s.json").read_text())["env"]["ANTHROPIC_AUTH_TOKEN"] == "k-123"
    codex = setup_cmd("codex", "--config", str(config))
    provider = tomllib.loads(codex.stdout)["model_providers"]["deepseek_gateway"]
    assert provider["env_key"] == "TEAM_KEY" and provider["base_url"] == "http://127.0.0.1:8000/team/v1"


def test_codex_write_makes_a_home(tmp_path: Path) -> None:
    home = tmp_path / "codex-home"
    done = setup_cmd("codex", "--port", "8124", "--write", str(home))
    assert done.returncode == 0, done.stderr
    config = tomllib.loads((home / "config.toml").read_text())
    assert config["model"] == "deepseek-v4-pro" and config["model_provider"] == "deepseek_gateway"
    provider = config["model_providers"]["deepseek_gateway"]
    assert provider["base_url"] == "http://127.0.0.1:8124/v1" and provider["wire_api"] == "responses"
    assert "env_key" not in provider  # the shipped pipelines take no gateway key
    assert config["analytics"]["enabled"] is False and config["check_for_update_on_startup"] is False
    catalog = json.loads(Path(config["model_catalog_json"]).read_text())
    assert Path(config["model_catalog_json"]).is_absolute()
    entries = {m["slug"]: m for m in catalog["models"]}
    assert set(entries) == {"deepseek-v4-pro", "deepseek-v4-flash"}
    for slug, entry in entries.items():
        card = MODELS[slug]
        assert CODEX_REQUIRED <= set(entry)
        assert entry["apply_patch_tool_type"] == "freeform"
        assert entry["context_window"] == card.context_window
        assert [lv["effort"] for lv in entry["supported_reasoning_levels"]] == list(card.reasoning_levels)
        assert entry["default_reasoning_level"] == card.default_reasoning_level == config["model_reasoning_effort"]
        assert entry["supports_parallel_tool_calls"] is True and entry["supports_reasoning_summaries"] is True
        assert entry["input_modalities"] == (["text", "image"] if card.vision else ["text"])
        assert "*** Begin Patch" in entry["base_instructions"]
    again = setup_cmd("codex", "--write", str(home))
    assert again.returncode == 1 and "--force" in again.stderr
    assert setup_cmd("codex", "--write", str(home), "--force").returncode == 0


def test_no_pipeline_for_the_client(tmp_path: Path) -> None:
    config = tmp_path / "p.yaml"
    config.write_text("upstreams: {s: {type: simulator}}\npipelines: {c: {client: chat, upstream: s}}\n")
    done = setup_cmd("codex", "--config", str(config))
    assert done.returncode == 1
    assert done.stderr.startswith("error: ") and "no pipeline serves the 'responses' client" in done.stderr


@pytest.mark.parametrize("client", ["claude", "codex"])
def test_the_simulator_pipelines_list_the_tables_models(client: str) -> None:
    """``--pipeline demo_…``: an upstream that advertises no models offers the table's."""
    done = setup_cmd(client, "--pipeline", "demo_claude_code" if client == "claude" else "demo_codex")
    assert done.returncode == 0, done.stderr
    assert "http://127.0.0.1:8000/demo" in done.stdout


@pytest.mark.parametrize("sight", ["describe_images", "route", "none"])
def test_codex_is_told_a_model_takes_images_when_the_pipeline_gives_it_sight(tmp_path: Path, sight: str) -> None:
    """Codex 0.169 offers view_image (and keeps images in its history) only for a model whose
    catalog entry has image input: a pipeline that describes images, or routes them to a model that
    sees, makes deepseek-v4-pro one; without either it stays text-only."""
    stages = "[{describe_images: {upstream: {type: simulator}, model: deepseek-v4-flash}}]" if sight == "describe_images" else "[]"
    routes = "[{name: shots, when: {images: true}, upstream: s, model: deepseek-v4-flash}]" if sight == "route" else "[]"
    config = tmp_path / "p.yaml"
    config.write_text("upstreams: {s: {type: simulator, profile: deepseek, models: {default: deepseek-v4-pro}}}\n"
                      f"pipelines: {{c: {{client: responses, upstream: s, stages: {stages}, routes: {routes}}}}}\n")
    done = setup_cmd("codex", "--config", str(config), "--write", str(tmp_path / "home"))
    assert done.returncode == 0, done.stderr
    catalog = json.loads((tmp_path / "home" / "gateway-models.json").read_text())
    (entry,) = [m for m in catalog["models"] if m["slug"] == "deepseek-v4-pro"]
    assert entry["input_modalities"] == (["text"] if sight == "none" else ["text", "image"])
