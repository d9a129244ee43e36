"""Serve the gateway for end-to-end tests: hypercorn.trio.serve on 127.0.0.1 port 0.

The official SDKs are synchronous here (their async clients are asyncio-only), so tests call them
through ``trio.to_thread.run_sync`` while the server runs in the test's trio loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
from hypercorn.config import Config as HyperConfig
from hypercorn.trio import serve

from pipeline.app import Gateway
from pipeline.config import parse_config


@asynccontextmanager
async def open_gateway(yaml_text: str, *, env: dict[str, str] | None = None) -> AsyncIterator[tuple[str, Gateway]]:
    """Start a gateway for ``yaml_text``; yields (base URL, Gateway)."""
    gateway = Gateway(parse_config(yaml_text, env=env or {}))
    config = HyperConfig()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 1
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(lambda task_status: serve(gateway, config, shutdown_trigger=stop.wait,
                                                             task_status=task_status))
        try:
            yield binds[0], gateway
        finally:
            stop.set()


def simulator_upstream(app_gateway: Gateway, upstream_id: str = "sim"):
    """The in-process Simulator behind a `simulator` upstream (to inspect what it received)."""
    return app_gateway.upstreams[upstream_id].simulator
