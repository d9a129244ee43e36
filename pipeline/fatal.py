"""A start that fails ends the process: one ``error:`` line on stderr and a non-zero exit status.

Under ``hypercorn -k trio pipeline:app`` the app runs in a worker process that hypercorn's
supervisor spawns, and the worker's exit status never reaches the shell: hypercorn 0.18's
``run()`` records a failed worker's status, then overwrites it with that of the workers still
left (none), and exits 0 (pgjones/hypercorn#269). Lifespan's ``startup.failed`` and an error at
import end the same way, with a traceback. So a worker that cannot start ends its supervisor
too, with SIGKILL (the supervisor takes SIGTERM and SIGINT as a clean shutdown, status 0, and
SIGHUP as a reload), after setting the shutdown event (other workers stop) and, with the one
default worker, releasing that event's semaphores, which multiprocessing's resource tracker
would otherwise report as leaked. The shell then sees status 137 (128 + SIGKILL); the worker
itself exits with ``status``. With ``-w N`` each worker prints its own line.

Standard library only: ``pipeline:app`` imports this when the rest of the app fails to import.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import sys
from typing import Any, NoReturn

_POSITION = re.compile(r'^in ".*", (line \d+, column \d+)$')


def one_line(exc: BaseException) -> str:
    """The fault as one line: a ``ConfigError``'s own text, else the exception's type and text
    (YAML's multi-line messages joined, their position kept)."""
    errors = sys.modules.get("pipeline.errors")  # not imported: then exc is no ConfigError
    config_error = errors is not None and isinstance(exc, errors.ConfigError)
    text = str(exc) if config_error else f"startup failed: {type(exc).__name__}: {exc}"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return "; ".join(_POSITION.sub(r"at \1", line) for line in lines)


def exit_startup(message: str, *, status: int = 1) -> NoReturn:
    """Print ``error: message``, end a hypercorn supervisor that spawned this process, exit."""
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()
    try:
        _end_supervisor()
    finally:
        os._exit(status)


def _end_supervisor() -> None:
    worker = multiprocessing.current_process()
    parent = multiprocessing.parent_process()
    target = getattr(worker, "_target", None)
    if parent is None or parent.pid != os.getppid() or not getattr(target, "__module__", "").startswith("hypercorn."):
        return  # not a hypercorn worker (-w 0, tests, another server): this process's status is the one seen
    kwargs = getattr(worker, "_kwargs", {})
    event = kwargs.get("shutdown_event")
    if event is not None:
        event.set()  # other workers stop
        if getattr(kwargs.get("config"), "workers", 0) == 1:  # with -w N a sibling may not have attached yet
            for lock in _semlocks(event):
                try:
                    type(lock)._cleanup(lock._semlock.name)  # unlink, and unregister from the tracker
                except OSError:  # at worst the tracker frees it, with a warning
                    pass
    os.kill(parent.pid, signal.SIGKILL)


def _semlocks(obj: Any, depth: int = 0) -> list[Any]:
    from multiprocessing.synchronize import SemLock

    found: list[Any] = []
    for value in vars(obj).values():
        if isinstance(value, SemLock):
            found.append(value)
        elif depth < 2 and type(value).__module__ == SemLock.__module__:
            found.extend(_semlocks(value, depth + 1))  # Event -> Condition -> its locks
    return found


__all__ = ["exit_startup", "one_line"]
