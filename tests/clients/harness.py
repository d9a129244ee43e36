"""Harness for the real-client tests: gateway + simulator server + client in one loopback netns.

``run_client`` writes a pipelines config whose upstream is ``type: openai_chat`` with
``profile: deepseek`` at the simulator process that ``run_client.sh`` starts
(``python -m upstreams.simulator``), so every request goes through the production transport.
Simulator options (``verify_replay``, faults, ``context_window``...) reach that process as
``--fault-on`` / ``--options`` flags. Read the results with ``finished_lines`` and ``sim_stats``.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

HERE = Path(__file__).resolve().parent
CLIENTS = os.environ.get("GW_CLIENTS", "")
STAGES = ["thinking_filter", "token_budget", "tool_ids", "structured_output"]  # the shipped pipelines' stages
# The same with the gateway's web search first, at the fake SearXNG that run_client.sh starts.
WEB_SEARCH_STAGES = [{"web_search": {"options": {"base_url": "${GW_SEARXNG_URL}"}, "max_results": 3}}, *STAGES]


def skip_reason() -> str | None:
    if not CLIENTS or not (Path(CLIENTS) / "node_modules" / ".bin" / "claude").exists():
        return "GW_CLIENTS does not name an npm prefix with claude and codex installed"
    return root_reason()


def root_reason() -> str | None:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return "needs root and unshare for a loopback-only network namespace"
    return None


def gateway_config(upstream: Mapping[str, Any] | None = None, stages: Sequence[Any] = STAGES) -> dict[str, Any]:
    """Both client pipelines under ``/sim`` on the simulator server (``upstream`` adds fields)."""
    sim = {"type": "openai_chat", "base_url": "${GW_SIM_URL}", "api_key_env": "SIM_API_KEY",
           "profile": "deepseek",
           "models": {"default": "deepseek-v4-pro", "*haiku*": "deepseek-v4-flash"},
           **(upstream or {})}
    return {"upstreams": {"sim": sim}, "pipelines": {
        "claude": {"mount": "/sim", "client": "anthropic", "stages": list(stages), "upstream": "sim"},
        "codex": {"mount": "/sim", "client": "responses", "stages": list(stages), "upstream": "sim"},
    }}


def _faults(faults: Sequence[Mapping[str, Any]] | str) -> list[Mapping[str, Any]]:
    return yaml.safe_load(faults) or [] if isinstance(faults, str) else list(faults)


def run_client(
    tmp_path: Path, which: str, prompt: str, faults: Sequence[Mapping[str, Any]] | str = (), *,
    sim_options: Mapping[str, Any] | None = None, upstream: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None, codex_config: str = "", timeout: float = 240,
    prepare: Callable[[Path], None] | None = None, setup: bool = False, stages: Sequence[Any] = STAGES,
    config: Mapping[str, Any] | None = None, clients: str | None = None,
) -> tuple[int, Path, list[dict[str, Any]]]:
    """Run ``claude -p`` or ``codex exec`` with ``prompt``; returns (exit code, out dir, the
    gateway's ``request_finished`` lines). The simulator verifies reasoning replay unless
    ``sim_options`` says otherwise; ``prepare(workdir)`` fills the work dir first; ``config`` is the
    whole gateway config instead of ``gateway_config(upstream, stages)`` (``${GW_SIM_URL}`` is the
    simulator; pipelines ``claude`` and ``codex`` under ``/sim``). ``setup``: the
    client is configured only by what ``python -m pipeline setup`` writes into its home (and its
    environment holds nothing of the client's own). ``clients``: another npm prefix holding
    the client (tests/clients/test_matrix.py: one prefix per version) instead of ``GW_CLIENTS``."""
    reason = skip_reason() if clients is None else root_reason()
    if reason:
        pytest.skip(reason)
    config_path = tmp_path / "pipelines.yaml"
    config_path.write_text(json.dumps(config if config is not None else gateway_config(upstream, stages)))
    out = tmp_path / "out"
    (out / "workdir").mkdir(parents=True, exist_ok=True)
    if prepare is not None:
        prepare(out / "workdir")
    if setup:
        write_setup(config_path, out / "home", which)
    args = [f"--fault-on={f['on_request']}:{f['kind']}" for f in _faults(faults)]
    args.append("--options=" + json.dumps({"verify_replay": True, **(sim_options or {})}))
    full_env = {**os.environ, "GW_PYTHON": sys.executable, "GW_SIM_ARGS": shlex.join(args),
                "GW_CODEX_CONFIG": codex_config, "GW_CLIENT_TIMEOUT": str(int(timeout)),
                **(env or {})}
    if setup:
        full_env = {k: v for k, v in full_env.items() if not k.startswith(CLIENT_ENV_PREFIXES)}
        full_env["GW_SETUP"] = "1"
    proc = subprocess.run(
        ["unshare", "--net", "--", "bash", "-c", 'ip link set lo up && exec "$@"', "isolate",
         str(HERE / "run_client.sh"), clients or CLIENTS, str(config_path), str(out), which, "/sim", prompt],
        env=full_env, timeout=timeout + 60, capture_output=True, text=True)
    if proc.returncode in (97, 98):
        pytest.fail(proc.stderr[-3000:])
    return proc.returncode, out, finished_lines(out)


# The variables through which a client could be configured besides its settings files.
CLIENT_ENV_PREFIXES = ("ANTHROPIC_", "CLAUDE_", "DISABLE_", "CODEX_", "OPENAI_")
SIM_URL = "http://127.0.0.1:9100"  # where run_client.sh starts the simulator


def write_setup(config: Path, home: Path, which: str) -> None:
    """What a new user runs: ``python -m pipeline setup claude|codex --write`` into the client's home."""
    target = home / ".claude" / "settings.json" if which == "claude" else home
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "setup", which, "--config", str(config), "--port", "8000",
         "--write", str(target)],
        env={**os.environ, "GW_SIM_URL": SIM_URL}, cwd=HERE.parent.parent, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def finished_lines(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "gateway.log").read_text().splitlines()
            if line.startswith("{") and '"request_finished"' in line]


def sim_stats(out: Path) -> dict[str, Any]:
    """The simulator's ``GET /_sim/stats`` taken when the client had exited."""
    return json.loads((out / "simulator_stats.json").read_text())


def sim_requests(out: Path) -> list[dict[str, Any]]:
    """The chat request bodies the simulator received (the upstream's view of the run), oldest first."""
    return list(json.loads((out / "simulator_requests.json").read_text()))


def client_events(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "client.jsonl").read_text().splitlines()
            if line.startswith("{")]


def assert_loop(lines: list[dict[str, Any]], turns: int) -> None:
    generate = [line for line in lines if line["endpoint"] == "generate"]
    ok = [line for line in generate if line["status"] == 200 and not line["error_code"]]
    assert len(ok) == turns, [(line["status"], line["error_code"]) for line in generate]
    # Every turn after the first replays the previous turns' reasoning from the envelope.
    assert [line["replay_rung"] for line in ok[1:]] == ["envelope"] * (turns - 1)


def assert_replay_verified(out: Path) -> dict[str, Any]:
    """Every chat request's assistant tool-call turns were compared byte for byte by the
    simulator (none unknown), and every tool call it emitted was echoed back and checked."""
    stats = sim_stats(out)
    checks = stats["replay"]
    assert checks, stats
    assert all(c["unknown_turns"] == 0 and c["verified_turns"] == c["tool_turns"]
               for c in checks), checks
    return stats


__all__ = ["CLIENTS", "STAGES", "WEB_SEARCH_STAGES", "write_setup", "assert_loop", "assert_replay_verified",
           "client_events", "finished_lines", "gateway_config", "root_reason", "run_client", "sim_requests",
           "sim_stats", "skip_reason"]
