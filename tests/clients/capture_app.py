"""The gateway's ASGI app with every client request recorded: ``pipeline:app`` unchanged behind
a wrapper that appends each HTTP request (method, path, headers, the body decoded as JSON) and the
status the gateway answered as one line to ``$GW_CAPTURE`` (when it has answered; ``seq``: the
order the requests arrived in); the gateway gets the same bytes. ``run_client.sh`` serves it instead of
``pipeline:app`` when ``GW_APP=tests.clients.capture_app:app``, so a test can compare what each
client version really sent (tests/clients/test_matrix.py)."""

from __future__ import annotations

import itertools
import json
import os
from typing import Any

from pipeline import app as gateway

Scope = dict[str, Any]
_arrived = itertools.count()


async def app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        await gateway(scope, receive, send)
        return
    chunks: list[bytes] = []
    messages: list[dict[str, Any]] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    raw = b"".join(chunks)
    try:
        body: Any = json.loads(raw) if raw else None
    except ValueError:
        body = {"_unparsed_bytes": len(raw)}
    record = {"seq": next(_arrived), "method": scope["method"], "path": scope["path"],
              "query": scope["query_string"].decode(),
              "headers": {k.decode(): v.decode("latin-1") for k, v in scope["headers"]
                          if k.lower() not in (b"authorization", b"x-api-key")},
              "body": body}
    replay = iter(messages)

    async def replayed() -> dict[str, Any]:
        return next(replay, None) or await receive()

    async def sending(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            record["status"] = message["status"]
        await send(message)

    try:
        await gateway(scope, replayed, sending)
    finally:
        with open(os.environ["GW_CAPTURE"], "a") as out:
            out.write(json.dumps(record) + "\n")
