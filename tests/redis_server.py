"""A real ``redis-server`` for tests (Debian's package; ``.ci/run`` installs it): started on a free
127.0.0.1 port with nothing persisted, stopped after. Tests that need it skip, saying why, only
when the binary is not installed; a server that is installed and does not start fails them."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

NOT_INSTALLED = "redis-server is not installed (apt-get install redis-server; .ci/run installs it)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def redis_server(tmp: Path, port: int | None = None) -> Iterator[str]:
    """``redis://127.0.0.1:PORT/0`` of a fresh server (on ``port``, else a free one); its log in ``tmp``."""
    binary = shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists()
                                              else None)
    if binary is None:
        pytest.skip(NOT_INSTALLED)
    port = port or free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    log = tmp / "redis.log"
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp), "--logfile", str(log)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while not ping(port):
            if proc.poll() is not None:
                text = log.read_text()[-2000:] if log.exists() else ""
                raise AssertionError(f"redis-server exited ({proc.returncode}): {text}")
            assert time.monotonic() < deadline, "redis-server did not answer PING in 10 s"
            time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)
