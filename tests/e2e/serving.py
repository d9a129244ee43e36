"""Serve the gateway for end-to-end tests: hypercorn.trio.serve on 127.0.0.1 port 0.

The official SDKs are synchronous here (their async clients are asyncio-only), so tests call them
through ``trio.to_thread.run_sync`` while the server runs in the test's trio loop. The upstream
is the simulator as its own process (``SimulatorProcess``, the ``sim`` fixture), reached through
the production ``openai_chat`` upstream: write ``{SIM}`` (a YAML flow mapping's fields) as the
upstream and pass ``sim=`` to ``open_gateway``, which fills in ``${SIM_URL}``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
from hypercorn.config import Config as HyperConfig
from hypercorn.trio import serve

from pipeline.app import Gateway
from pipeline.config import parse_config
from upstreams.simulator.testing import SimulatorProcess

# The simulator server requires this key; the gateway reads it from this env var (conftest sets it).
SIM_KEY = "sk-sim-test-5e4d3c2b1a"
SIM_KEY_ENV = "GW_TEST_SIM_KEY"
# The fields of an upstream at the simulator server, for a YAML flow mapping: ``sim: {%s}``.
SIM = ("type: openai_chat, base_url: '${SIM_URL}', profile: deepseek, api_key_env: " + SIM_KEY_ENV
       + ", models: {default: deepseek-v4-pro, '*haiku*': deepseek-v4-flash, '*flash*': deepseek-v4-flash}")


@asynccontextmanager
async def open_gateway(yaml_text: str, *, env: dict[str, str] | None = None,
                       sim: SimulatorProcess | None = None, keep_alive_timeout: float | None = None
                       ) -> AsyncIterator[tuple[str, Gateway]]:
    """Start a gateway for ``yaml_text`` (``${SIM_URL}``: ``sim``'s URL); yields (base URL, Gateway).
    ``keep_alive_timeout`` overrides hypercorn's (5 s)."""
    env = dict(env or {})
    if sim is not None:
        env["SIM_URL"] = sim.url
    gateway = Gateway(parse_config(yaml_text, env=env))
    config = HyperConfig()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 1
    if keep_alive_timeout is not None:
        config.keep_alive_timeout = keep_alive_timeout
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(lambda task_status: serve(gateway, config, shutdown_trigger=stop.wait,
                                                             task_status=task_status))
        try:
            yield binds[0], gateway
        finally:
            stop.set()
