"""A start that fails looks like one: the README command exits non-zero with one ``error:`` line.

Each broken configuration or stage is started the way users start the gateway, as
``hypercorn -k trio pipeline:app`` (``python -m hypercorn``, its one spawned worker), and checked
with ``python -m pipeline check``: both refuse it with the same single line, without a traceback,
and the server never comes up answering 500s. The processes run concurrently (each start costs
about a second). A valid file still starts and serves ``/healthz``.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest

from tests.conftest import ROOT
from tests.config_helpers import BASE

# Operator modules for module:attr stages, written next to the config (their directory is on
# PYTHONPATH): each fails in its own way.
MODULES = {
    "syntax_stage.py": "def broken(:\n    pass\n",
    "raising_stage.py": "raise RuntimeError('no GPU on this host')\n",
    "keyerror_stage.py": (
        "from pipeline import Stage\n\n\n"
        "class Picky(Stage):\n"
        "    name = 'picky'\n\n"
        "    def __init__(self, config, **kwargs):\n"
        "        super().__init__(config, **kwargs)\n"
        "        {}['region']\n"
    ),
    "async_hook_stage.py": (
        "from pipeline import Stage\n\n\n"
        "class Shout(Stage):\n"
        "    name = 'shout'\n\n"
        "    async def on_event(self, event, ctx):\n"
        "        return (event,)\n\n\n"
        "class Pooled(Stage):\n"
        "    name = 'pooled'\n\n"
        "    async def open(self):\n"
        "        raise OSError('license server unreachable')\n"
    ),
    "closed_upstream.py": (
        "from upstreams.simulator.upstream import SimulatorUpstream\n\n\n"
        "class Closed(SimulatorUpstream):\n"
        "    async def open(self):\n"
        "        raise OSError('socket budget exhausted')\n"
    ),
}


class Case(NamedTuple):
    yaml: str
    line: str  # the whole stderr line after "error: <file>: " or "error: "


CASES: dict[str, Case] = {
    "unknown stage": Case(BASE + "    stages: [no_such_stage]\n",
                          "pipeline 'p' stage 0: unknown stage 'no_such_stage' (built-in: describe_images, "
                          "structured_output, thinking_filter, token_budget, tool_ids, web_search; or use module:attr)"),
    "stage module with a SyntaxError": Case(
        BASE + "    stages: ['syntax_stage:Stage']\n",
        "pipeline 'p' stage 0: cannot import stage 'syntax_stage:Stage': SyntaxError: invalid syntax "
        "(syntax_stage.py, line 1)"),
    "stage module raising at import": Case(
        BASE + "    stages: ['raising_stage:Stage']\n",
        "pipeline 'p' stage 0: cannot import stage 'raising_stage:Stage': RuntimeError: no GPU on this host"),
    "stage __init__ raising KeyError": Case(
        BASE + "    stages: ['keyerror_stage:Picky']\n",
        "pipeline 'p' stage 0 (keyerror_stage:Picky): KeyError: 'region'"),
    "async def on_event": Case(
        BASE + "    stages: ['async_hook_stage:Shout']\n",
        "pipeline 'p' stage 0 (async_hook_stage:Shout): on_event must be synchronous (def, not async def); "
        "for async work use the task form on_events (async def on_events(inbox, outbox, ctx))"),
    "stage open() raising": Case(
        BASE + "    stages: ['async_hook_stage:Pooled']\n",
        "stage 'p.0.pooled': cannot open: OSError: license server unreachable"),
    "upstream open() raising": Case(
        BASE.replace("type: simulator", "type: 'closed_upstream:Closed'"),
        "upstream 'sim': cannot open: OSError: socket budget exhausted"),
    "max_body_bytes -1": Case(BASE + "server: {max_body_bytes: -1}\n",
                              "{file}: Expected `int` >= 1 - at `$.server.max_body_bytes`"),
    "deadline_s -5": Case(BASE + "    deadline_s: -5\n",
                          "{file}: pipeline 'p': Expected `float` > 0.0 - at `$.deadline_s`"),
    "base_url not a url": Case(
        BASE.replace("type: simulator", "type: openai_chat\n    base_url: not a url"),
        "upstream 'sim': base_url 'not a url' is not an http:// or https:// URL with a host"),
    "base_url without host": Case(
        BASE.replace("type: simulator", "type: openai_chat\n    base_url: 'https:///v1'"),
        "upstream 'sim': base_url 'https:///v1' is not an http:// or https:// URL with a host"),
    "idle_timeout_s 0": Case(BASE.replace("type: simulator", "type: simulator\n    idle_timeout_s: 0"),
                             "upstream 'sim': Expected `float` > 0.0 - at `$.idle_timeout_s`"),
    "log_level verbose": Case(BASE + "server: {log_level: verbose}\n",
                              "{file}: Invalid enum value 'verbose' - at `$.server.log_level`"),
    "two chat pipelines on one mount": Case(
        BASE + "  q:\n    client: chat\n    upstream: sim\n",
        "pipeline 'q': POST /v1/chat/completions is already served by pipeline 'p', so this one would "
        "never be reached (give it another mount)"),
    "missing env var": Case(BASE.replace("type: simulator", "type: openai_chat\n    base_url: '${NO_SUCH_URL_VAR}'"),
                            "$.upstreams.sim.base_url: environment variable NO_SUCH_URL_VAR is not set "
                            "(use ${NO_SUCH_URL_VAR:-default} to default it)"),
    "invalid YAML": Case("pipelines: [1,\n",
                         "{file}: invalid YAML: while parsing a flow node; did not find expected node content; "
                         "at line 2, column 1"),
}


class Run(NamedTuple):
    returncode: int | None  # None: still running after the timeout (then killed, its group too)
    stderr: str


def _env(tmp: Path, config: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(tmp), "PIPELINES_CONFIG": str(config),
            "PYTHONDONTWRITEBYTECODE": "1"}


def _run(args: list[str], env: dict[str, str], timeout: float = 15) -> Run:
    """Run to its end, or for ``timeout`` s: a gateway still serving is then stopped as an operator
    would (SIGTERM: hypercorn stops its worker and frees its semaphores), else killed with its
    process group (an orphaned hypercorn worker would serve on)."""
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, env=env, start_new_session=True)
    try:
        _, err = proc.communicate(timeout=timeout)
        return Run(proc.returncode, err)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            _, err = proc.communicate()
        return Run(None, err)


HYPERCORN = ["-m", "hypercorn", "-k", "trio", "-b", "127.0.0.1:0", "pipeline:app"]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, Run, Run]]:
    """Every case started by hypercorn and checked by `check`, concurrently: name -> (line, start, check)."""
    tmp = tmp_path_factory.mktemp("startup")
    for name, source in MODULES.items():
        (tmp / name).write_text(source)
    jobs = {}
    with ThreadPoolExecutor(max_workers=8) as pool:
        for i, (name, case) in enumerate(CASES.items()):
            config = tmp / f"case{i}.yaml"
            config.write_text(case.yaml)
            env = _env(tmp, config)
            line = "error: " + case.line.replace("{file}", str(config))
            jobs[name] = (line, pool.submit(_run, HYPERCORN, env),
                          pool.submit(_run, ["-m", "pipeline", "check", str(config)], env))
        return {name: (line, start.result(), check.result()) for name, (line, start, check) in jobs.items()}


@pytest.mark.parametrize("name", list(CASES))
def test_broken_start_exits_nonzero_with_one_line(results, name: str) -> None:
    """hypercorn exits non-zero; its stderr is exactly the one line (no traceback, no 'Running on')."""
    line, start, _ = results[name]
    assert start.returncode != 0, start.stderr
    assert start.stderr.splitlines() == [line]


@pytest.mark.parametrize("name", list(CASES))
def test_check_refuses_with_the_same_line(results, name: str) -> None:
    """`python -m pipeline check` refuses what startup refuses: status 1, the same line."""
    line, _, check = results[name]
    assert check.returncode == 1, check.stderr
    assert check.stderr.splitlines() == [line]


def test_valid_config_starts_and_serves(tmp_path) -> None:
    """The shipped file (with two legitimately shared /v1/models routes per mount) still starts,
    answers /healthz, and a SIGTERM stops it with status 0."""
    proc = subprocess.Popen([sys.executable, *HYPERCORN], cwd=ROOT, stderr=subprocess.PIPE, text=True,
                            env=_env(tmp_path, ROOT / "pipelines.yaml"), start_new_session=True)
    try:
        url = _wait_for_bind(proc)
        assert httpx.get(f"{url}/healthz", timeout=5).json() == {"status": "ok"}
        chat = httpx.post(f"{url}/demo/v1/chat/completions", timeout=10,
                          json={"model": "deepseek-v4-pro", "messages": [{"role": "user", "content": "SIM:text hi"}]})
        assert chat.status_code == 200 and chat.json()["choices"][0]["message"]["content"] == "hi"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait_for_bind(proc: subprocess.Popen[str]) -> str:
    """The URL from hypercorn's "Running on" line (read in a thread: readline has no timeout)."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr or ()], daemon=True).start()
    seen = []
    deadline = time.monotonic() + 15
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        seen.append(line)
        if "Running on http://" in line:
            return line.split("Running on ", 1)[1].split()[0]
    raise AssertionError(f"no bind line within 15 s: {seen}")
