"""pipeline/hypercorn_patch.py applies itself only to the hypercorn it was written against: in a
fresh interpreter, as hypercorn's worker imports ``pipeline``."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT

PROBE = """
import hypercorn.trio.run
from hypercorn.trio.tcp_server import TCPServer
{prepare}
import pipeline
from pipeline import hypercorn_patch
import hypercorn.trio.tcp_server as tcp
print(hypercorn_patch.apply(), TCPServer.run.__module__, hypercorn.trio.run.worker_serve.__module__, tcp.MAX_RECV)
"""


def probe(prepare: str = "", **env: str) -> tuple[str, str]:
    proc = subprocess.run([sys.executable, "-c", PROBE.format(prepare=prepare)], capture_output=True, text=True,
                          cwd=ROOT, timeout=60, env={**os.environ, **env})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip(), proc.stderr.strip()


def test_applied_on_import_by_the_worker() -> None:
    out, err = probe()
    assert out == "True pipeline.hypercorn_patch pipeline.hypercorn_patch 262144" and err == ""  # reads of 256 KiB


def test_a_changed_function_is_one_warning_and_no_patch() -> None:
    out, err = probe("async def _close(self): pass\nTCPServer._close = _close")
    assert out == "False hypercorn.trio.tcp_server hypercorn.trio.run 65536"
    assert err == ("warning: hypercorn 0.18.0 (TCPServer._close changed) is not the hypercorn 0.18.0 that "
                   "pipeline/hypercorn_patch.py fixes; not patched (pgjones/hypercorn#203 and unbounded client "
                   "writes may apply)")


def test_another_version_is_one_warning_and_no_patch() -> None:
    out, err = probe("import importlib.metadata as m\nm.version = lambda name: '0.19.0'")
    assert out == "False hypercorn.trio.tcp_server hypercorn.trio.run 65536"
    assert err.startswith("warning: hypercorn 0.19.0 is not the hypercorn 0.18.0") and "\n" not in err


def test_turned_off_by_the_environment() -> None:
    out, err = probe(GATEWAY_HYPERCORN_PATCH="off")
    assert out == "False hypercorn.trio.tcp_server hypercorn.trio.run 65536" and err == ""


def test_a_changed_read_loop_is_one_warning_and_no_patch() -> None:
    out, err = probe("import hypercorn.trio.tcp_server as t\nt.MAX_RECV = 4096")
    assert out == "False hypercorn.trio.tcp_server hypercorn.trio.run 4096"
    assert "(TCPServer._read_data changed)" in err
