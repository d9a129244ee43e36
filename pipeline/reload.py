"""Configuration reload: ``SIGHUP`` or a change of the pipelines file builds a new configuration
beside the one serving, and the gateway switches to it between two requests.

Each configuration is a ``Generation`` (its pipelines and upstreams, and how many requests it is
serving). A request keeps the generation it started on to its end, so an open stream goes on with
the upstream clients and stages it began with; the generation given up is closed when its last
request ends. A file that does not load, validate, build or open is refused with one
``config_reload_refused`` line and the serving configuration stays.

Triggers (``watch``): the file's size, modification time and inode are polled every
``server.reload_poll_s`` seconds (0: off), and ``SIGHUP`` is received where the process can
receive signals (trio's main thread). Under ``hypercorn -k trio pipeline:app`` the application
runs in a worker process: hypercorn's own parent process restarts its workers on ``SIGHUP``
(dropping streams that outlive its ``graceful_timeout``), so send the signal to the worker (its pid
is in the ``gateway_started`` line), run hypercorn with ``--workers 0``, or just save the file.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
import trio

from pipeline.registry import Pipeline, close_stages
from pipeline.upstream import Upstream

log = structlog.get_logger("gateway")


@dataclass(eq=False)
class Generation:
    """One configuration as served, with the number of requests it is serving."""

    pipelines: dict[str, Pipeline]
    upstreams: dict[str, Upstream]
    active: int = 0
    retired: bool = False
    closed: bool = field(default=False, repr=False)

    async def close(self) -> None:
        """Close its stages and upstream clients (once)."""
        if self.closed:
            return
        self.closed = True
        with trio.CancelScope(shield=True):
            await close_stages(self.pipelines)
            for up in self.upstreams.values():
                await up.aclose()

    async def leave(self) -> None:
        """A request of this generation ended: the last one of a retired generation closes it."""
        self.active -= 1
        if self.retired and self.active == 0:
            await self.close()

    async def retire(self) -> None:
        """A newer configuration serves from now on: close this one now or after its last request."""
        self.retired = True
        if self.active == 0:
            await self.close()


def file_stamp(path: str) -> tuple[int, int, int] | None:
    """What a change of the file changes: (inode, size, mtime in ns); ``None`` if it is missing."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


async def watch(path: str, poll_s: float, reload: Callable[[str], Awaitable[Any]]) -> None:
    """Call ``reload(reason)`` on ``SIGHUP`` and when the file at ``path`` changes; runs until
    cancelled. Reloads never overlap: the next trigger waits for the reload in progress."""
    lock = trio.Lock()

    async def run(reason: str) -> None:
        async with lock:
            await reload(reason)

    async with trio.open_nursery() as nursery:
        if poll_s > 0:
            nursery.start_soon(_poll, path, poll_s, run)
        try:
            receiver = trio.open_signal_receiver(signal.SIGHUP)
        except (RuntimeError, ValueError):  # not trio's main thread: file changes only
            return
        with receiver as signals:
            async for _ in signals:
                await run("SIGHUP")


async def _poll(path: str, poll_s: float, run: Callable[[str], Awaitable[Any]]) -> None:
    seen = file_stamp(path)
    while True:
        await trio.sleep(poll_s)
        now = file_stamp(path)
        if now is not None and now != seen:
            seen = now
            await run("file_changed")


__all__ = ["Generation", "file_stamp", "log", "watch"]
