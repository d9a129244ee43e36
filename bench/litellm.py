"""LiteLLM's proxy as a comparison target (``python -m bench --litellm``).

It is installed from PyPI into its own venv (``$BENCH_PEERS/.venv-litellm``, default
``/tmp/perf/peers``: outside the repository, never the project's), and
configured to serve the same three client paths from the same fake upstream over Chat
Completions: ``hosted_vllm/`` models, the local cost map (offline), and
``use_chat_completions_url_for_anthropic_messages`` so ``/v1/messages`` goes to the chat URL.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.procs import PEERS, LiteLLM, free_port

VENV = PEERS / ".venv-litellm"
MODELS = ("fake-whole", "fake-chunk", "fake-hold")


def ensure_installed() -> Path:
    """The venv with ``litellm[proxy]``; created on first use."""
    if (VENV / "bin" / "litellm").exists():
        return VENV
    print(f"installing litellm[proxy] into {VENV} (once)", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", "litellm[proxy]==1.106.*"], check=True)
    return VENV


def config_text(upstream_port: int) -> str:
    lines = ["model_list:"]
    for model in MODELS:
        lines += [
            f"  - model_name: {model}",
            "    litellm_params:",
            f"      model: hosted_vllm/{model}",
            f"      api_base: http://127.0.0.1:{upstream_port}/v1",
            "      api_key: bench-key",
        ]
    lines += [
        "litellm_settings:",
        "  drop_params: true",
        "  use_chat_completions_url_for_anthropic_messages: true",
        "  request_timeout: 600",
        "general_settings:",
        "  disable_spend_logs: true",
    ]
    return "\n".join(lines) + "\n"


def start_litellm(workdir: Path, *, core: int, upstream_port: int) -> LiteLLM:
    venv = ensure_installed()
    config = workdir / "litellm.yaml"
    config.write_text(config_text(upstream_port))
    proxy = LiteLLM(core=core, port=free_port(), log=workdir / "litellm.log", venv=venv, config=config)
    proxy.start(timeout_s=180)
    return proxy


__all__ = ["config_text", "ensure_installed", "start_litellm"]
