"""Fixes to hypercorn 0.18.0's trio worker, applied when the gateway is served by it.

Written against hypercorn 0.18.0 (the newest release; trio 0.35, h11 0.16). ``apply()`` checks the
installed version and the source of each function it replaces (a SHA-256 of its text); if
either is not what this was written against, it writes one ``warning:`` line on stderr and
patches nothing. ``GATEWAY_HYPERCORN_PATCH=off`` turns it off. ``pipeline/__init__`` applies it
when hypercorn's trio worker imports ``pipeline:app``; ``Gateway.startup`` applies it too (for
``hypercorn.trio.serve`` in-process) and sets the write timeout from ``server.write_timeout_s``.

1. ``TCPServer._close`` (the root cause of pgjones/hypercorn#203, still open): hypercorn
   serialises its data writes with ``send_lock`` but closes outside it. ``send_eof`` holds the
   trio stream's send-conflict detector across a checkpoint, so a write by another task in that
   window raises ``trio.BusyResourceError``, which ``protocol_send`` does not expect. A request
   answered while h11 rejects the bytes after it (``Connection: close`` followed by more data, or
   a ``Content-Length`` shorter than the body) makes hypercorn write its 400 from the reading
   task while the app's task closes: the error escapes ``TCPServer.run`` and ends the worker.
   Here ``send_eof`` waits for the lock, so a write in flight (bounded by 2.) goes out whole
   first, and ``aclose`` runs even when the wait is cancelled.
2. ``TCPServer.protocol_send``: hypercorn shields each write, so a client that stops reading
   holds the writing task (and the upstream stream behind it) past any deadline. Here a write is
   still shielded against cancellation (a half-written response cannot go on), but bounded: by
   the writing task's own deadline (the pipeline's ``deadline_s``) and by ``write_timeout_s`` for
   each 64 KiB piece the client does not take. Past either, the connection is aborted: the
   write returns as if the client had gone, and the request's cancellation is delivered.
3. ``TCPServer.run``: whatever else escapes one connection's task is logged
   (``connection_failed``) and closes that connection only, not the worker.
4. ``hypercorn.trio.run.worker_serve``: hypercorn's parent exits 0 whenever a worker exits with
   any other status (``run.py`` computes the status a second time from the emptied worker list,
   pgjones/hypercorn#269), and it replaces a worker that exits 0. So a worker that fails after it
   started serving logs ``worker_crashed`` and exits 0, and the parent starts a new one instead of
   leaving the port closed with status 0. A start that fails is ``pipeline.fatal``'s (it ends the
   parent with a non-zero status: a new worker would fail the same way); under ``-w 0`` the error
   ends the process with status 1 as it is.
5. ``hypercorn.trio.tcp_server.MAX_RECV``: each read takes up to 256 KiB, not 64. Every read is a
   pass through h11, the ASGI queue and the app's ``receive``; a 1 MB Claude Code history arrived
   in 16 of them. With 4 the gateway spends ~0.7 ms less CPU on a 1 MB request and ~4 ms less
   on a 4 MB one (``python -m bench.sized``; bench/RESULTS.md, round 9); a small request still
   takes one read, of what arrived.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import inspect
import math
import os
import sys
from typing import Any

import structlog
import trio

from pipeline.config import ServerConfig

HYPERCORN_VERSION = "0.18.0"
# SHA-256 (first 16 hex digits) of inspect.getsource() of each replaced function, as in 0.18.0.
_EXPECTED = {
    "TCPServer.run": "fd34b021d1a86c98",
    "TCPServer.protocol_send": "225856426bff7be0",
    "TCPServer._close": "bc73c4ae25a1ceec",
    "worker_serve": "8dc8347a9fc357ca",
    "TCPServer._read_data": "7ca747d922c65cf1",  # not replaced: it reads MAX_RECV (5.)
}
READ_SIZE = 256 * 1024  # the most one read of a client's connection takes (5.)
PIECE = 64 * 1024  # write_timeout_s bounds the wait for the client to take each piece this large
DEFAULT_WRITE_TIMEOUT_S = ServerConfig().write_timeout_s

_state: dict[str, Any] = {"applied": False, "refused": False, "write_timeout_s": DEFAULT_WRITE_TIMEOUT_S}
_log = structlog.get_logger("gateway")


def _digest(func: Any) -> str:
    try:
        return hashlib.sha256(inspect.getsource(func).encode()).hexdigest()[:16]
    except (OSError, TypeError):  # no source to compare: not the expected function
        return ""


def apply(*, write_timeout_s: float | None = None) -> bool:
    """Patch hypercorn (once; later calls only set the write timeout). Returns whether it is
    patched."""
    if write_timeout_s is not None:
        _state["write_timeout_s"] = write_timeout_s
    if _state["applied"] or _state["refused"]:
        return bool(_state["applied"])
    if os.environ.get("GATEWAY_HYPERCORN_PATCH", "").lower() in ("off", "0", "false", "no"):
        _state["refused"] = True
        return False
    from hypercorn.trio import run as hyper_run
    from hypercorn.trio import tcp_server as hyper_tcp
    from hypercorn.trio.tcp_server import TCPServer

    version = importlib.metadata.version("hypercorn")
    current = {"TCPServer.run": TCPServer.run, "TCPServer.protocol_send": TCPServer.protocol_send,
               "TCPServer._close": TCPServer._close, "worker_serve": hyper_run.worker_serve}
    changed = [name for name, func in current.items() if _digest(func) != _EXPECTED[name]]
    reads = _digest(TCPServer._read_data) == _EXPECTED["TCPServer._read_data"]
    if not reads or getattr(hyper_tcp, "MAX_RECV", None) not in (2**16, READ_SIZE):
        changed.append("TCPServer._read_data")
    if version != HYPERCORN_VERSION or changed:
        _state["refused"] = True
        what = f"hypercorn {version}" + (f" ({', '.join(changed)} changed)" if changed else "")
        sys.stderr.write(f"warning: {what} is not the hypercorn {HYPERCORN_VERSION} that pipeline/hypercorn_patch.py "
                         "fixes; not patched (pgjones/hypercorn#203 and unbounded client writes may apply)\n")
        sys.stderr.flush()
        return False
    _patch(TCPServer, hyper_run, current)
    hyper_tcp.MAX_RECV = READ_SIZE  # read by _read_data at each call
    _state["applied"] = True
    return True


def _patch(tcp_server: Any, hyper_run: Any, original: dict[str, Any]) -> None:
    from hypercorn.events import Closed, RawData

    original_run, original_send, original_serve = (original["TCPServer.run"], original["TCPServer.protocol_send"],
                                                    original["worker_serve"])

    async def _close(self: Any) -> None:
        try:
            if self.send_lock.statistics().owner is not trio.lowlevel.current_task():
                async with self.send_lock:  # after a write in flight (bounded, see _bounded_send)
                    await self.stream.send_eof()
        except (trio.BrokenResourceError, AttributeError, trio.BusyResourceError, trio.ClosedResourceError):
            pass  # gone already, or TLS
        finally:
            await self.stream.aclose()

    async def protocol_send(self: Any, event: Any) -> None:
        if not isinstance(event, RawData):
            await original_send(self, event)
            return
        async with self.send_lock:
            try:
                await _bounded_send(self.stream, event.data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                await self.protocol.handle(Closed())

    async def run(self: Any) -> None:
        try:
            await original_run(self)
        except Exception as exc:  # an ExceptionGroup of Exceptions too
            await _connection_failed(self, exc)
        except BaseExceptionGroup as group:  # errors beside a Cancelled: log them, let it go on
            errors, rest = group.split(Exception)
            if errors is None:
                raise
            await _connection_failed(self, errors)
            if rest is None:
                raise
            raise rest from None  # the rest of this same group, not an error raised while handling it

    async def worker_serve(*args: Any, shutdown_trigger: Any = None,
                           task_status: Any = trio.TASK_STATUS_IGNORED, **kwargs: Any) -> None:
        started = _Started(task_status)
        try:
            await original_serve(*args, shutdown_trigger=shutdown_trigger, task_status=started, **kwargs)
        except Exception as exc:
            if shutdown_trigger is None or not started.done:  # -w 0, or it never served: fail
                raise
            _log.error("worker_crashed", error=repr(_leaf(exc)), exc_info=exc,
                       action="exiting with status 0: hypercorn starts a new worker")

    tcp_server._close = _close
    tcp_server.protocol_send = protocol_send
    tcp_server.run = run
    hyper_run.worker_serve = worker_serve


async def _bounded_send(stream: Any, data: bytes) -> None:
    """``stream.send_all(data)``, shielded but aborted (``ClosedResourceError``) at the caller's
    deadline or when the client takes no ``PIECE`` for ``write_timeout_s``."""
    caller = trio.current_effective_deadline()
    if caller == -math.inf:  # the caller is cancelled already: finish the write, as hypercorn does
        caller = math.inf
    timeout = _state["write_timeout_s"]
    view = memoryview(data)
    with trio.CancelScope(shield=True) as scope:
        start = 0
        while True:
            scope.deadline = min(caller, trio.current_time() + timeout)
            await stream.send_all(view[start:start + PIECE])
            start += PIECE
            if start >= len(view):
                break
    if scope.cancelled_caught:
        await trio.aclose_forcefully(stream)
        raise trio.ClosedResourceError("the client did not take the response in time")


async def _connection_failed(server: Any, exc: BaseException) -> None:
    _log.error("connection_failed", error=repr(_leaf(exc)), exc_info=exc, action="connection closed")
    await trio.aclose_forcefully(server.stream)


def _leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


class _Started:
    """A ``task_status`` that remembers whether the worker started serving."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.done = inner, False

    def started(self, value: Any = None) -> None:
        self.done = True
        self.inner.started(value)


__all__ = ["DEFAULT_WRITE_TIMEOUT_S", "HYPERCORN_VERSION", "apply"]
