"""The simulator as a real HTTP server: an ASGI app over a ``Simulator``, served by hypercorn/trio.

Pieces are sent with ``more_body`` after their delays; a drop raises ``SimulatedDrop`` after the
response started, which makes hypercorn cut the connection mid-body. A watcher on ``receive()``
notices client disconnects (recorded like the transport's ``ConnectionRecord``, with
``time.monotonic()`` times, comparable across processes).

With ``control=True`` (``python -m upstreams.simulator --control``, for tests only) the app also
answers ``GET /_sim/requests`` (``?last=N``: the received chat bodies, oldest first),
``GET /_sim/connections`` (the records) and ``POST /_sim/reset`` (a fresh ``Simulator``: the body
is a ``SimConfig`` as JSON, empty for the startup config). ``/_sim/`` requests (the engine's
``GET /_sim/stats`` too) get no connection record.
"""

from __future__ import annotations

import time
from collections import deque
from functools import partial
from typing import Any, Protocol
from urllib.parse import parse_qs

import hypercorn.config
import hypercorn.trio
import msgspec
import trio

from upstreams.simulator.config import SimConfig
from upstreams.simulator.engine import SimResponse, Simulator
from upstreams.simulator.transport import ConnectionRecord

_CONTROL_PATHS = frozenset({"/_sim/requests", "/_sim/connections", "/_sim/reset"})


class SimulatedDrop(Exception):
    """Raised inside the ASGI app to abort the connection mid-response."""


class Responder(Protocol):
    """What ``SimulatorApp`` serves: a ``Simulator``, or a test's scripted answers."""

    config: SimConfig
    chat_requests: int

    def respond(self, method: str, path: str, headers: dict[str, str], body: bytes) -> SimResponse: ...


class SimulatorApp:
    """ASGI application serving DeepSeek's API from ``simulator`` (any ``Responder``).

    Attributes:
        connections: the last ``history`` ``ConnectionRecord``s (server side).
        control: answer the ``/_sim/`` inspection and reset endpoints (tests only).
    """

    def __init__(self, simulator: Responder, *, control: bool = False) -> None:
        self.simulator = simulator
        self.control = control
        self._startup_config = simulator.config
        self.connections: deque[ConnectionRecord] = deque(maxlen=simulator.config.history)

    def reset(self, config: SimConfig | None = None) -> None:
        """A fresh ``Simulator`` (counters, history, emitted calls) for ``config``."""
        self.simulator = Simulator(config or self._startup_config)
        self.connections = deque(maxlen=self.simulator.config.history)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        if self.control and scope["path"] in _CONTROL_PATHS:
            await self._control(scope, bytes(body), send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        simulator = self.simulator
        before = simulator.chat_requests
        response = simulator.respond(scope["method"], scope["path"], headers, bytes(body))
        after = simulator.chat_requests
        record = ConnectionRecord(
            method=scope["method"], path=scope["path"], status=response.status,
            request_no=after if after != before else 0, opened_at=time.monotonic(),
            total_pieces=len(response.chunks))
        if not scope["path"].startswith("/_sim/"):
            self.connections.append(record)
        await send({"type": "http.response.start", "status": response.status,
                    "headers": response.headers})
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watch, receive, nursery.cancel_scope, record)
                await self._write(response, send, record)
                nursery.cancel_scope.cancel()
        finally:
            record.closed_at = time.monotonic()
        if record.dropped:
            raise SimulatedDrop("simulated connection drop")

    async def _write(self, response: SimResponse, send: Any, record: ConnectionRecord) -> None:
        for i, (delay, data) in enumerate(response.chunks):
            if i == response.drop_after:
                record.dropped = True
                return
            if delay > 0:
                await trio.sleep(delay)
            await send({"type": "http.response.body", "body": data, "more_body": True})
            record.pieces_sent = i + 1
        # Complete once every piece is out: a client that has its Content-Length may close
        # before the empty closing piece.
        record.complete = True
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _control(self, scope: dict[str, Any], body: bytes, send: Any) -> None:
        """The ``/_sim/`` endpoints (see the module docstring)."""
        route = (scope["method"], scope["path"])
        status = 200
        answer: Any = None  # whatever msgspec encodes as JSON
        simulator = self.simulator
        if route == ("GET", "/_sim/requests") and isinstance(simulator, Simulator):  # a script keeps none
            last = parse_qs(scope.get("query_string", b"").decode()).get("last", ["0"])[0]
            requests = list(simulator.requests)
            answer = requests[-int(last):] if last.isdigit() and int(last) > 0 else requests
        elif route == ("GET", "/_sim/connections"):
            answer = list(self.connections)
        elif route == ("POST", "/_sim/reset"):
            try:
                self.reset(msgspec.json.decode(body, type=SimConfig) if body.strip() else None)
                answer = self.simulator.config
            except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
                status, answer = 400, {"error": {"message": f"bad SimConfig: {exc}"}}
        else:
            status, answer = 404, {"error": {"message": f"no control route {route[0]} {route[1]}"}}
        data = msgspec.json.encode(answer)
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data, "more_body": False})

    @staticmethod
    async def _watch(receive: Any, scope: trio.CancelScope, record: ConnectionRecord) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        record.client_closed = not record.complete
        scope.cancel()


def hypercorn_config(host: str, port: int, *, quiet: bool = True) -> hypercorn.config.Config:
    config = hypercorn.config.Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = None if quiet else "-"
    config.graceful_timeout = 1.0
    return config


async def serve_simulator(
    config: SimConfig | Simulator | SimulatorApp | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    quiet: bool = True,
    control: bool = False,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the simulator over HTTP until cancelled; reports the base URL once bound.

    Args:
        config: a ``SimConfig`` (a new ``Simulator``), or a ``Simulator`` / ``SimulatorApp``
            to keep a handle on its requests and connection records.
        host, port: where to bind; port 0 picks a free port.
        quiet: no hypercorn error log (a simulated drop logs a traceback otherwise).
        control: serve the ``/_sim/`` endpoints (ignored when ``config`` is a ``SimulatorApp``).

    Use as ``url = await nursery.start(serve_simulator, config)``; ``url`` is
    ``http://127.0.0.1:PORT``.
    """
    if isinstance(config, SimulatorApp):
        app = config
    else:
        simulator = config if isinstance(config, Simulator) else Simulator(config)
        app = SimulatorApp(simulator, control=control)
    async with trio.open_nursery() as nursery:
        # hypercorn types an ASGI app's scope as a union of TypedDicts; ours takes the dict it is
        # at run time, which the Callable parameter (contravariant) refuses.
        serve = partial(hypercorn.trio.serve, app, hypercorn_config(host, port, quiet=quiet))  # type: ignore[arg-type]
        binds = await nursery.start(serve)
        task_status.started(binds[0])


__all__ = ["Responder", "SimulatedDrop", "SimulatorApp", "hypercorn_config", "serve_simulator"]
