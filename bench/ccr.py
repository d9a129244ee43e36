"""claude-code-router as a comparison target (``python -m bench.sized --peers ccr``).

``@musistudio/claude-code-router@2.0.0`` is installed from npm into its own prefix
(``$BENCH_PEERS/.ccr``, default ``/tmp/perf/peers``: outside the repository, never the
project's dependencies), and started as ``ccr start`` (its server in
the foreground) with ``HOME`` in the run's working directory, where its
``~/.claude-code-router/config.json`` names one OpenAI-compatible provider, ``fake``, on the fake
upstream's Chat Completions URL, the bench's client key as its ``APIKEY`` and logging off. It
serves Anthropic Messages only; a request's model ``fake,<model>`` routes to that provider and
model (its router's explicit form), so the fake upstream still picks its behaviour by name.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from bench.procs import PEERS, Proc, cpu_seconds, descendants, free_port
from bench.scenarios import CLIENT_KEY

PACKAGE = "@musistudio/claude-code-router@2.0.0"
PREFIX = PEERS / ".ccr"
CLI = PREFIX / "node_modules" / "@musistudio" / "claude-code-router" / "dist" / "cli.js"
MODELS = ("fake-whole", "fake-chunk", "fake-hold")


def ensure_installed() -> Path:
    """``cli.js`` of claude-code-router; installed with npm on first use."""
    if CLI.exists():
        return CLI
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("--peers ccr needs node and npm on PATH")
    print(f"installing {PACKAGE} into {PREFIX} (once)", file=sys.stderr, flush=True)
    PREFIX.mkdir(parents=True, exist_ok=True)
    subprocess.run([npm, "install", "--prefix", str(PREFIX), "--no-audit", "--no-fund", PACKAGE], check=True)
    return CLI


def model(name: str) -> str:
    """The request's model for the fake upstream's ``name``."""
    return f"fake,{name}"


def config(upstream_port: int, port: int) -> dict[str, object]:
    return {"HOST": "127.0.0.1", "PORT": port, "APIKEY": CLIENT_KEY, "LOG": False, "NON_INTERACTIVE_MODE": True,
            "API_TIMEOUT_MS": 600_000,
            "Providers": [{"name": "fake", "api_base_url": f"http://127.0.0.1:{upstream_port}/v1/chat/completions",
                           "api_key": "bench-key", "models": list(MODELS)}],
            "Router": {"default": "fake,fake-whole"}}


class ClaudeCodeRouter(Proc):
    name = "claude-code-router"

    def __init__(self, *, core: int, port: int, log: Path, home: Path, cli: Path) -> None:
        node = shutil.which("node") or "node"
        super().__init__([node, str(cli), "start"], core=core, log=log, port=port, cwd=home,
                         env={"HOME": str(home), "NODE_ENV": "production"})

    def cpu(self) -> float:
        assert self.proc is not None
        return sum(cpu_seconds(p) for p in [self.proc.pid, *descendants(self.proc.pid)])

    def rss_kb(self) -> int:
        return self.tree_rss_kb()


def start_ccr(workdir: Path, *, core: int, upstream_port: int) -> ClaudeCodeRouter:
    cli = ensure_installed()
    home = workdir / "ccr-home"
    (home / ".claude-code-router").mkdir(parents=True, exist_ok=True)
    port = free_port()
    (home / ".claude-code-router" / "config.json").write_text(json.dumps(config(upstream_port, port), indent=1))
    proxy = ClaudeCodeRouter(core=core, port=port, log=workdir / "ccr.log", home=home, cli=cli)
    proxy.start(timeout_s=60)
    return proxy


__all__ = ["ClaudeCodeRouter", "config", "ensure_installed", "model", "start_ccr"]
