"""The ASGI app as a new user meets it: startup refusals, routing, health and metrics."""

from __future__ import annotations

import subprocess
import sys

import httpx

from tests.conftest import ROOT
from tests.e2e.serving import SIM, open_gateway

CONFIG = """
upstreams:
  sim: {%s}
pipelines:
  demo:
    mount: /demo
    client: chat
    upstream: sim
""" % SIM


def hypercorn(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hypercorn", *args, "-b", "127.0.0.1:0", "pipeline:app"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60, env=env)


class TestStartup:
    def test_asyncio_worker_is_refused_with_one_line(self) -> None:
        """Without -k trio the app refuses to start, saying exactly how to run it."""
        proc = hypercorn()
        assert proc.returncode != 0
        assert proc.stderr.splitlines() == \
            ["error: pipeline:app needs the trio worker: run `hypercorn -k trio pipeline:app`"]

    def test_broken_config_is_one_line(self, tmp_path) -> None:
        """A config error at startup is one line naming the fault, not a traceback."""
        bad = tmp_path / "bad.yaml"
        bad.write_text("upstreams: {}\npipelines:\n  x: {client: chat, upstream: nope}\n")
        proc = hypercorn("-k", "trio", env={"PIPELINES_CONFIG": str(bad), "PATH": ""})
        assert proc.stderr.splitlines() == [f"error: {bad}: pipeline 'x': unknown upstream 'nope' (defined: )"]
        assert proc.returncode != 0


class TestRouting:
    async def test_unknown_path_method_health_metrics(self, sim) -> None:
        """404 for unknown paths, 405 for a wrong method, /healthz and /metrics answer."""
        async with open_gateway(CONFIG, sim=sim) as (url, _):
            async with httpx.AsyncClient() as http:
                missing = await http.post(f"{url}/v1/chat/completions", json={})
                wrong = await http.get(f"{url}/demo/v1/chat/completions")
                health = await http.get(f"{url}/healthz")
                ok = await http.post(f"{url}/demo/v1/chat/completions",
                                     json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
                metrics = await http.get(f"{url}/metrics")
        assert missing.status_code == 404 and wrong.status_code == 405
        assert health.json() == {"status": "ok"} and ok.status_code == 200
        assert 'gateway_requests_total{error_code="",pipeline="demo",status="200",upstream="sim"}' in metrics.text
