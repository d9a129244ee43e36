"""hypercorn's floor: a trivial ASGI app that relays the fake upstream's stream as it is.

``python -m bench`` serves it like the gateway (``hypercorn -k trio -w 1 bench.relay:app``, the
same flags, pinned to the same core) and measures it as the ``hypercorn`` rows, so the gateway's
share above hypercorn is stated from one run. Per request it does what every gateway must and
nothing else: reads the request body, opens the upstream stream with the gateway's own transport
(``upstreams.transport``: ``LeanClient`` on ``StreamTransport``, read as the gateway reads it)
and writes each piece it reads through as one ASGI body message. No decoding, no translation,
no stages, no log line, none of ``pipeline.hypercorn_patch``'s fixes. The client's path picks the
fake upstream's answer in that dialect (Chat, Anthropic Messages at ``/v1/messages``, OpenAI
Responses at ``/responses``), so each client dialect has its floor.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import httpx

from upstreams.response_body import ResponseBody
from upstreams.transport import LeanClient, StreamTransport

ROUTES = {"/v1/chat/completions": "/v1/chat/completions", "/v1/messages": "/v1/messages",
          "/v1/responses": "/responses"}
HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
UPSTREAM_HEADERS = {"content-type": "application/json", "accept": "text/event-stream",
                    "authorization": "Bearer bench-key"}
MAX_CONNECTIONS = 2048  # as bench/pipelines.yaml's upstreams: 1,000 held streams


class _Relay:
    def __init__(self) -> None:
        self.base = f"http://127.0.0.1:{os.environ.get('BENCH_UPSTREAM_PORT', '9')}"
        self.client: LeanClient | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
        elif scope["type"] == "http":
            await self.http(scope, receive, send)

    async def lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.client = LeanClient(StreamTransport(max_connections=MAX_CONNECTIONS),
                                         timeout=httpx.Timeout(600.0, connect=10.0))
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.client is not None:
                    await self.client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        pieces: list[bytes] = []
        more = True
        while more:
            message = await receive()
            pieces.append(message.get("body", b""))
            more = message.get("more_body", False)
        route = ROUTES.get(scope["path"])
        if route is None or self.client is None:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        body = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        async with self.client.stream("POST", self.base + route, content=body, headers=UPSTREAM_HEADERS) as resp:
            await send({"type": "http.response.start", "status": resp.status_code, "headers": HEADERS})
            async for piece in _pieces(resp):
                await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


def _pieces(resp: httpx.Response) -> AsyncIterator[bytes]:
    """One piece per socket read, as the gateway's upstream reads it (``sse_upstream._body``)."""
    stream = resp.stream
    return stream.watched() if isinstance(stream, ResponseBody) else resp.aiter_raw()


app = _Relay()

__all__ = ["app"]
