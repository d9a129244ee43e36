"""Processes under test: start, pin (taskset), wait ready, read CPU time and RSS from /proc, stop.

``Gateway`` runs ``hypercorn -k trio -w 1 pipeline:app`` (the serving process is hypercorn's one
worker, a child of the supervisor); ``LiteLLM`` runs the LiteLLM proxy from its own venv;
``FakeUpstream`` runs ``python -m bench.upstream``; ``relay`` serves ``bench.relay:app``
(hypercorn's floor) as the gateway is served. Nothing here binds anything but 127.0.0.1.
``--gateway-src`` / ``--gateway-venv`` run the gateway from another tree and venv; with
``--check-src`` the gateway's imports are traced and every module of its own it loaded must come
from that tree (``Gateway.provenance``: the tree, its commit, the module count).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.history import THINKING_SECRET
from bench.scenarios import CLIENT_KEY

REPO = Path(__file__).resolve().parents[1]
# Where the peers (claude-code-router, LiteLLM) are installed, each in its own prefix: outside the
# repository, whose bench/ tests/test_layers.py walks file by file (BENCH_PEERS to choose).
PEERS = Path(os.environ.get("BENCH_PEERS", "/tmp/perf/peers"))
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        kids = children(todo.pop())
        found += kids
        todo += kids
    return found


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of one process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE_KB
    except OSError:
        return 0


def steal_ms(core: int) -> float:
    """Milliseconds the hypervisor ran something else while this core wanted to run (/proc/stat)."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{core} "):
                return int(line.split()[8]) * 1000 / CLK_TCK
    return 0.0


def core_times(core: int) -> tuple[int, int]:
    """(busy, total) jiffies of one CPU core from /proc/stat."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{core} "):
                v = [int(x) for x in line.split()[1:]]
                idle = v[3] + v[4]
                return sum(v) - idle, sum(v)
    return 0, 1


def set_fifo(pid: int, priority: int | None) -> str:
    """Every thread of ``pid`` at SCHED_FIFO ``priority``, or back to normal (None), if allowed
    (root). Returns the policy now in force, or why not."""
    policy, param = (os.SCHED_FIFO, priority) if priority else (os.SCHED_OTHER, 0)
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            os.sched_setscheduler(int(tid), policy, os.sched_param(param))
    except OSError as exc:
        return f"normal ({exc.strerror})"
    return "fifo" if priority else "normal"


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout_s: float, what: str, log: Path | None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening\n{tail}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout_s:g}s")


class Proc:
    """A pinned child process; ``pid`` is the one that serves (CPU and RSS are read there)."""

    name = "proc"

    def __init__(self, argv: list[str], *, core: int, env: dict[str, str] | None = None, log: Path,
                 port: int, cwd: Path = REPO) -> None:
        self.argv = ["taskset", "-c", str(core), *argv]
        self.env = {**os.environ, **(env or {})}
        self.log, self.port, self.cwd = log, port, cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid = 0

    def start(self, timeout_s: float = 30) -> None:
        out = open(self.log, "ab")
        self.proc = subprocess.Popen(self.argv, env=self.env, cwd=self.cwd, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_port(self.port, self.proc, timeout_s, self.name, self.log)
        self.pid = self.serving_pid()

    def serving_pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def rss_kb(self) -> int:
        return rss_kb(self.pid)

    def tree_rss_kb(self) -> int:
        assert self.proc is not None
        return sum(rss_kb(p) for p in [self.proc.pid, *descendants(self.proc.pid)])

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)  # our own session: the child and its workers
                self.proc.wait(10)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(5)
        self.proc = None


class FakeUpstream(Proc):
    name = "fake upstream"

    def __init__(self, *, core: int, port: int, log: Path, deltas: int, hold_s: float) -> None:
        super().__init__([sys.executable, "-m", "bench.upstream", "--port", str(port), "--deltas", str(deltas),
                          "--hold-s", str(hold_s)], core=core, log=log, port=port)


class Gateway(Proc):
    name = "gateway (hypercorn -k trio -w 1)"

    def __init__(self, *, core: int, port: int, log: Path, config: Path, upstream_port: int, src: Path = REPO,
                 venv: Path | None = None, check_src: bool = False, app: str = "pipeline:app") -> None:
        hypercorn = str(venv / "bin" / "hypercorn") if venv else str(Path(sys.executable).with_name("hypercorn"))
        env = {"PIPELINES_CONFIG": str(config), "BENCH_UPSTREAM_PORT": str(upstream_port),
               "GATEWAY_THINKING_SECRET": THINKING_SECRET, "BENCH_UPSTREAM_KEY": "bench-key"}
        if check_src:
            env["PYTHONVERBOSE"] = "1"  # every module load, with its file, to the log (import time only)
        super().__init__([hypercorn, "-k", "trio", "-w", "1", "--backlog", "4096", "--keep-alive", "75",
                          "-b", f"127.0.0.1:{port}", app], core=core, log=log, port=port, cwd=src,
                         env=env)
        self.src, self.venv, self.check_src = src, venv, check_src
        self.provenance: dict[str, Any] = {}

    def start(self, timeout_s: float = 30) -> None:
        offset = self.log.stat().st_size if self.log.exists() else 0
        super().start(timeout_s)
        if self.check_src:
            try:
                self.provenance = self.traced_provenance(offset)
            except BaseException:
                self.stop()  # the callers' try/finally starts after start()
                raise

    def serving_pid(self) -> int:
        assert self.proc is not None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for pid in descendants(self.proc.pid):
                line = cmdline(pid)
                if "spawn_main" in line:
                    return pid
            time.sleep(0.05)
        return self.proc.pid  # -w 0 style: serving in-process

    def traced_provenance(self, offset: int) -> dict[str, Any]:
        """Once the worker answers ``/healthz`` (it has imported the app), the source files the
        gateway's processes loaded (``PYTHONVERBOSE`` lines in the log after ``offset``): all that is
        not an installed package must lie in ``src``, or this raises. The worker is the only
        process that imports the app (hypercorn's supervisor only spawns it)."""
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} on {self.port}: /healthz did not answer 200 within 30s")
            time.sleep(0.05)
        with open(self.log, "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
        loaded = {m.group(1) for m in _LOADED.finditer(text)}
        own = sorted(f for f in loaded if "/site-packages/" not in f and not f.startswith(sys.base_prefix))
        src = str(self.src.resolve())
        foreign = [f for f in own if not f.startswith(src + "/")]
        if foreign or not own:
            raise RuntimeError(f"{self.name}: expected its code from {src}, loaded {len(foreign)} other files "
                               f"(first: {foreign[:3]}) and {len(own) - len(foreign)} from there")
        packages = sorted({f[len(src) + 1:].split("/")[0] for f in own})
        return {"src": src, "venv": str(self.venv or Path(sys.executable).parent.parent),
                "commit": commit(self.src), "modules": len(own), "packages": packages, "worker_pid": self.pid}


# "# code object from /x/y.py", "# code object from '/x/__pycache__/y.cpython-311.pyc'",
# "# /x/__pycache__/y.cpython-311.pyc matches /x/y.py": the .py file a module was loaded from.
_LOADED = re.compile(r"^# (?:code object from '?|\S+\.pyc matches )(/\S+?\.py)'?$", re.M)


def commit(src: Path) -> str:
    """``src``'s HEAD, short, with ``+dirty`` when its tree differs from it ("" outside git)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=src, capture_output=True,
                              text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=src, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""
    return head + ("+dirty" if dirty else "")


def add_gateway_args(p: argparse.ArgumentParser) -> None:
    """The options that say which gateway runs (``python -m bench`` and ``bench.sized``)."""
    p.add_argument("--config", default=str(REPO / "bench" / "pipelines.yaml"))
    p.add_argument("--gateway-src", default=str(REPO), metavar="DIR",
                   help="run the gateway from this source tree (e.g. an older commit, `git archive`d or a worktree)")
    p.add_argument("--gateway-venv", metavar="DIR",
                   help="run the gateway with this venv's hypercorn (default: the one running the bench)")
    p.add_argument("--check-src", action="store_true",
                   help="trace the gateway's imports: fail unless its code came from --gateway-src; "
                        "emit a `gateway` record with the commit it serves")


def gateway(args: argparse.Namespace, *, core: int, log: Path, upstream_port: int) -> Gateway:
    """A gateway as the options say, on a free port."""
    return Gateway(core=core, port=free_port(), log=log, config=Path(args.config), upstream_port=upstream_port,
                   src=Path(args.gateway_src).resolve(),
                   venv=Path(args.gateway_venv).resolve() if args.gateway_venv else None,
                   check_src=args.check_src)


def relay(args: argparse.Namespace, *, core: int, log: Path, upstream_port: int) -> Gateway:
    """hypercorn alone: ``bench.relay:app`` (the fake upstream's stream relayed as it is) served
    as the gateway is (the same hypercorn, flags and core), from this tree."""
    return Gateway(core=core, port=free_port(), log=log, config=Path(args.config), upstream_port=upstream_port,
                   venv=Path(args.gateway_venv).resolve() if args.gateway_venv else None, app="bench.relay:app")


def provenance_record(gw: Gateway, **where: Any) -> dict[str, Any] | None:
    """The ``gateway`` record of a ``--check-src`` gateway (None without it)."""
    return {"scenario": "gateway", **where, **gw.provenance} if gw.provenance else None


class LiteLLM(Proc):
    name = "LiteLLM proxy"

    def __init__(self, *, core: int, port: int, log: Path, venv: Path, config: Path) -> None:
        super().__init__([str(venv / "bin" / "litellm"), "--config", str(config), "--host", "127.0.0.1",
                          "--port", str(port), "--num_workers", "1"], core=core, log=log, port=port,
                         env={"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR",
                              "LITELLM_MASTER_KEY": CLIENT_KEY, "DISABLE_ADMIN_UI": "True"})

    def serving_pid(self) -> int:
        assert self.proc is not None
        kids = descendants(self.proc.pid)
        return kids[-1] if kids else self.proc.pid

    def cpu(self) -> float:
        assert self.proc is not None
        return sum(cpu_seconds(p) for p in [self.proc.pid, *descendants(self.proc.pid)])

    def rss_kb(self) -> int:
        return self.tree_rss_kb()


__all__ = ["FakeUpstream", "Gateway", "LiteLLM", "Proc", "add_gateway_args", "commit", "core_times", "free_port",
           "gateway", "provenance_record", "relay", "set_fifo", "steal_ms"]
