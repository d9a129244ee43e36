"""The gateway as users run it, for tests: ``hypercorn -k trio pipeline:app`` as its own process
on a free 127.0.0.1 port, its output in a log file, waited for until ``/healthz`` answers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.conftest import ROOT
from tests.resilience.dialects import closed_port


class GatewayProcess:
    """``url``, ``proc`` (hypercorn's parent; the worker itself under ``-w 0``), ``log``."""

    def __init__(self, url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.url, self.proc, self.log = url, proc, log

    def workers(self) -> list[int]:
        """The pids of hypercorn's workers: the parent's spawned children (not its resource tracker)."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        return [int(pid) for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]

    def wait_healthy(self, limit_s: float = 20) -> None:
        deadline = time.monotonic() + limit_s
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert self.proc.poll() is None, f"gateway exited ({self.proc.returncode}): {self.log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "gateway did not start"
            time.sleep(0.05)


@contextmanager
def open_gateway_process(tmp_path: Path, config_text: str, env: dict[str, str] | None = None,
                         args: Sequence[str] = ()) -> Iterator[GatewayProcess]:
    """The gateway for ``config_text`` (hypercorn's default: one spawned worker; ``args`` adds
    flags), healthy; terminated after."""
    config = tmp_path / "pipelines.yaml"
    config.write_text(config_text)
    port = closed_port()
    log = tmp_path / "gateway.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hypercorn", "-k", "trio", *args, "-b", f"127.0.0.1:{port}", "pipeline:app"],
            cwd=ROOT, env={**os.environ, "PIPELINES_CONFIG": str(config), **(env or {})}, stdout=out,
            stderr=subprocess.STDOUT)
    try:
        gateway = GatewayProcess(f"http://127.0.0.1:{port}", proc, log)
        gateway.wait_healthy()
        yield gateway
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
