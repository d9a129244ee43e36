"""The simulator as a real HTTP server: an ASGI app over a ``Simulator``, served by hypercorn/trio.

Pieces are sent with ``more_body`` after their delays; a drop raises ``SimulatedDrop`` after the
response started, which makes hypercorn cut the connection mid-body. A watcher on ``receive()``
notices client disconnects (recorded like the transport's ``ConnectionRecord``).
"""

from __future__ import annotations

from collections import deque
from functools import partial
from typing import Any

import hypercorn.config
import hypercorn.trio
import trio

from upstreams.simulator.config import SimConfig
from upstreams.simulator.engine import SimResponse, Simulator
from upstreams.simulator.transport import ConnectionRecord


class SimulatedDrop(Exception):
    """Raised inside the ASGI app to abort the connection mid-response."""


class SimulatorApp:
    """ASGI application serving DeepSeek's API from ``simulator``.

    Attributes:
        connections: the last ``history`` ``ConnectionRecord``s (server side).
    """

    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator
        self.connections: deque[ConnectionRecord] = deque(maxlen=simulator.config.history)

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
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        before = self.simulator.chat_requests
        response = self.simulator.respond(scope["method"], scope["path"], headers, bytes(body))
        after = self.simulator.chat_requests
        record = ConnectionRecord(
            method=scope["method"], path=scope["path"], status=response.status,
            request_no=after if after != before else 0, opened_at=trio.current_time(),
            total_pieces=len(response.chunks))
        self.connections.append(record)
        await send({"type": "http.response.start", "status": response.status,
                    "headers": response.headers})
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watch, receive, nursery.cancel_scope, record)
                await self._write(response, send, record)
                nursery.cancel_scope.cancel()
        finally:
            record.closed_at = trio.current_time()
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
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        record.complete = True

    @staticmethod
    async def _watch(receive: Any, scope: trio.CancelScope, record: ConnectionRecord) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        record.client_closed = True
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
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the simulator over HTTP until cancelled; reports the base URL once bound.

    Args:
        config: a ``SimConfig`` (a new ``Simulator``), or a ``Simulator`` / ``SimulatorApp``
            to keep a handle on its requests and connection records.
        host, port: where to bind; port 0 picks a free port.
        quiet: no hypercorn error log (a simulated drop logs a traceback otherwise).

    Use as ``url = await nursery.start(serve_simulator, config)``; ``url`` is
    ``http://127.0.0.1:PORT``.
    """
    if isinstance(config, SimulatorApp):
        app = config
    else:
        simulator = config if isinstance(config, Simulator) else Simulator(config)
        app = SimulatorApp(simulator)
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(
            hypercorn.trio.serve, app, hypercorn_config(host, port, quiet=quiet)))
        task_status.started(binds[0])


__all__ = ["SimulatedDrop", "SimulatorApp", "hypercorn_config", "serve_simulator"]
