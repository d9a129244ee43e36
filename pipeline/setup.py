"""Client set-up from pipelines.yaml: ``python -m pipeline setup claude | codex``.

``claude`` gives Claude Code's environment (printed as ``export`` lines, or merged into a
``settings.json``'s ``env`` with ``--write FILE``): the base URL of the pipeline serving the
``anthropic`` client, an auth token, the main and small model names (what Claude Code's own
``opus`` and ``haiku`` names map to), the window it should compact at, and the opt-outs that
keep it off every host but the gateway.

``codex`` writes a Codex home (``--write DIR``; else prints the ``config.toml``): a model
provider at the pipeline serving the ``responses`` client (``wire_api = "responses"``) and a model
catalog (``model_catalog_json``) that makes each model first-class in Codex 0.169: freeform
``apply_patch``, the real context window, the upstream's reasoning levels, parallel tool calls
and reasoning summaries. Without the catalog Codex gives an unknown model fallback metadata: no
``apply_patch``, a guessed window and a warning.

Every number comes from the upstream's ``card`` (``pipeline.model_limits``, the one table).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.codex_prompt import CODEX_INSTRUCTIONS
from pipeline.config import load_config
from pipeline.model_limits import MODELS, ModelCard
from pipeline.registry import Pipeline, build_pipelines
from pipeline.upstream import Upstream

# What Claude Code's own model names are, to learn what the pipeline maps them to.
CLAUDE_MAIN, CLAUDE_SMALL = "claude-opus-5-5", "claude-haiku-5-5"
# Claude Code's opt-outs of every call that is not to the base URL (presence flags).
CLAUDE_OPT_OUTS = ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "DISABLE_TELEMETRY", "DISABLE_ERROR_REPORTING",
                   "DISABLE_AUTOUPDATER", "DISABLE_FEEDBACK_COMMAND", "CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY")
CATALOG_FILE = "gateway-models.json"
EFFORT_TEXT = {"none": "No reasoning", "minimal": "Least reasoning", "low": "Fast, light reasoning",
               "medium": "Balanced reasoning", "high": "Deep reasoning (the model's default)",
               "xhigh": "Deeper reasoning", "max": "Maximum reasoning depth"}


class SetupError(Exception):
    """The configuration has nothing to set the client up with (one line for the user)."""


@dataclass(frozen=True)
class Served:
    """A pipeline serving one client, its base URL and its first upstream."""

    pipeline: Pipeline
    base_url: str
    upstream: Upstream

    def models(self) -> list[tuple[str, ModelCard]]:
        """(client-facing id, card) for every model the upstream advertises (or, advertising none,
        the table's models for its profile)."""
        up = self.upstream
        pairs = up.advertised_models() or [(m, m) for m, c in MODELS.items() if up.profile.name in c.profiles]
        return [(client_id, up.card(target)) for client_id, target in pairs]

    def client_name_for(self, client_model: str) -> tuple[str, ModelCard]:
        """The id to send for what ``client_model`` maps to: that upstream model's own name when the
        pipeline maps it to itself, else an advertised id that does, else ``client_model``."""
        target = self.upstream.map_model(client_model)
        ids = [target, *(cid for cid, t in self.upstream.advertised_models() if t == target)]
        chosen = next((cid for cid in ids if self.upstream.map_model(cid) == target), client_model)
        return chosen, self.upstream.card(target)

    def gives_sight(self) -> bool:
        """Whether the pipeline lets a model without vision take images: a ``describe_images``
        stage describes them for it, or a route with ``images: true`` sends them to one that sees."""
        pipe = self.pipeline
        return (any(type(stage).name == "describe_images" for stage in pipe.stages)
                or any(route.when.images for route in pipe.config.routes))

    def api_key_env(self) -> str | None:
        keys = self.pipeline.config.api_keys_env
        return keys[0] if keys else None


def served(config_path: str, client: str, *, host: str, port: int, pipeline_id: str | None) -> Served:
    config = load_config(config_path)
    # Gateway keys are named, not needed here: a key variable unset at set-up time is no fault.
    unset = {var: "unset" for p in config.pipelines.values() for var in p.api_keys_env if not os.environ.get(var)}
    pipelines, _ = build_pipelines(config, env={**os.environ, **unset})
    found = [p for p in pipelines.values() if p.codec.name == client and pipeline_id in (None, p.id)]
    if not found:
        which = f"pipeline {pipeline_id!r} does not serve" if pipeline_id else "no pipeline serves"
        raise SetupError(f"{config_path}: {which} the {client!r} client")
    pipe = found[0]
    return Served(pipe, f"http://{host}:{port}{pipe.config.mount}", pipe.upstreams[0])


def claude_env(s: Served) -> dict[str, str]:
    """Claude Code's environment for the pipeline ``s``; the token is ``$VAR`` when a key is required."""
    main, main_card = s.client_name_for(CLAUDE_MAIN)
    small, _ = s.client_name_for(CLAUDE_SMALL)
    key_env = s.api_key_env()
    env = {
        "ANTHROPIC_BASE_URL": s.base_url,
        # Sent as a Bearer token, which the gateway accepts like x-api-key; with no gateway key
        # any value does (Claude Code wants one to skip its login).
        "ANTHROPIC_AUTH_TOKEN": f"${{{key_env}}}" if key_env else "gateway",
        "ANTHROPIC_MODEL": main,
        "ANTHROPIC_DEFAULT_OPUS_MODEL": main,
        "ANTHROPIC_DEFAULT_SONNET_MODEL": main,
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": small,
        "ANTHROPIC_SMALL_FAST_MODEL": small,  # the older name of the same setting
        # The window: Claude Code assumes 200K for a model it does not know; it compacts near this.
        "CLAUDE_CODE_MAX_CONTEXT_TOKENS": str(main_card.context_window),
        "CLAUDE_CODE_AUTO_COMPACT_WINDOW": str(main_card.context_window),
        "API_TIMEOUT_MS": "900000",  # DeepSeek may queue a request for up to 600 s
    }
    env.update(dict.fromkeys(CLAUDE_OPT_OUTS, "1"))
    return env


def write_claude_settings(path: Path, env: dict[str, str], key_env: str | None) -> None:
    """Merge ``env`` into the ``env`` of the settings file at ``path`` (other keys kept)."""
    if key_env:
        value = os.environ.get(key_env)
        if not value:
            raise SetupError(f"the pipeline requires a gateway key: set {key_env} before --write "
                             "(settings.json holds the value itself)")
        env = {**env, "ANTHROPIC_AUTH_TOKEN": value}
    settings: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    settings["env"] = {**settings.get("env", {}), **env}
    settings["model"] = env["ANTHROPIC_MODEL"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2) + "\n")


def codex_catalog(s: Served) -> dict[str, Any]:
    """Codex's ``model_catalog_json``: one ``ModelInfo`` (Codex 0.169's fields) per model."""
    entries = []
    for priority, (slug, card) in enumerate(s.models(), start=1):
        levels = [level for level in card.reasoning_levels if level in EFFORT_TEXT]
        entries.append({
            "slug": slug,
            "display_name": card.display_name,
            "description": card.description or f"{card.model} through deepseek-gateway",
            "default_reasoning_level": card.default_reasoning_level if card.reasoning else None,
            "supported_reasoning_levels": [{"effort": lv, "description": EFFORT_TEXT[lv]} for lv in levels],
            "shell_type": "shell_command",
            "visibility": "list",
            "supported_in_api": True,
            "priority": priority,
            "upgrade": None,
            "base_instructions": CODEX_INSTRUCTIONS,
            "supports_reasoning_summaries": card.reasoning,
            "default_reasoning_summary": "auto" if card.reasoning else "none",
            "support_verbosity": False,
            "default_verbosity": None,
            "apply_patch_tool_type": "freeform",
            "truncation_policy": {"mode": "tokens", "limit": 10000},
            "supports_parallel_tool_calls": card.parallel_tool_calls,
            "context_window": card.context_window,
            "max_context_window": card.context_window,
            "experimental_supported_tools": [],
            # Codex offers view_image, and keeps images in its history, only for a model with image input.
            "input_modalities": ["text", "image"] if card.vision or s.gives_sight() else ["text"],
        })
    return {"models": entries}


def codex_config(s: Served, catalog_path: Path) -> str:
    """Codex's ``config.toml``: the gateway as the model provider, the catalog, the opt-outs."""
    main, card = s.client_name_for("gpt-5.5")
    key_env = s.api_key_env()
    q = json.dumps  # a JSON string is a TOML basic string
    lines = [
        "# Written by `python -m pipeline setup codex`: Codex through deepseek-gateway.",
        f"model = {q(main)}",
        'model_provider = "deepseek_gateway"',
        f"model_catalog_json = {q(str(catalog_path))}",
        *([f"model_reasoning_effort = {q(card.default_reasoning_level)}"] if card.default_reasoning_level else []),
        'model_reasoning_summary = "auto"',
        "check_for_update_on_startup = false",
        "",
        "[model_providers.deepseek_gateway]",
        'name = "deepseek-gateway"',
        f"base_url = {q(s.base_url + '/v1')}",
        'wire_api = "responses"',
        *([f"env_key = {q(key_env)}"] if key_env else []),
        "stream_idle_timeout_ms = 900000  # DeepSeek may queue a request for up to 600 s",
        "",
        "# Keep Codex off every host but the gateway.",
        "[analytics]",
        "enabled = false",
        "[feedback]",
        "enabled = false",
        "[otel]",
        'exporter = "none"',
        'trace_exporter = "none"',
        'metrics_exporter = "none"',
        "[features]",
        "plugins = false",
        "apps = false",
        "",
    ]
    return "\n".join(lines)


def write_codex_home(s: Served, home: Path, *, force: bool) -> list[Path]:
    config, catalog = home / "config.toml", home / CATALOG_FILE
    if config.exists() and not force:
        raise SetupError(f"{config} exists: move it away or pass --force to overwrite it")
    home.mkdir(parents=True, exist_ok=True)
    catalog.write_text(json.dumps(codex_catalog(s), indent=2) + "\n")
    config.write_text(codex_config(s, catalog.resolve()))
    return [config, catalog]


def shell_exports(env: dict[str, str]) -> str:
    def quote(value: str) -> str:
        return f'"{value}"' if value.startswith("${") else "'" + value.replace("'", "'\\''") + "'"
    return "".join(f"export {k}={quote(v)}\n" for k, v in env.items())


def run(client: str, *, config_path: str, host: str, port: int, pipeline_id: str | None,
        write: str | None, force: bool = False) -> str:
    """The set-up for ``client`` (``claude`` | ``codex``): what to print. Raises ``SetupError``."""
    if client == "claude":
        s = served(config_path, "anthropic", host=host, port=port, pipeline_id=pipeline_id)
        env = claude_env(s)
        if write:
            write_claude_settings(Path(write).expanduser(), env, s.api_key_env())
            return f"wrote {write}\n"
        return shell_exports(env)
    s = served(config_path, "responses", host=host, port=port, pipeline_id=pipeline_id)
    if write:
        written = write_codex_home(s, Path(write).expanduser(), force=force)
        return "".join(f"wrote {p}\n" for p in written)
    home = Path(os.environ.get("CODEX_HOME") or "~/.codex").expanduser()
    return codex_config(s, home / CATALOG_FILE)


__all__ = ["SetupError", "claude_env", "codex_catalog", "codex_config", "run", "served"]
