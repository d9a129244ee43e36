"""Usage, cost and limits per gateway key, kept in the store so that replicas add up.

A pipeline with ``api_keys_env`` knows which key a request came with: the name of the env variable
that holds it (never the key itself). After each generate request its tokens are added to the
store's counters under that name and the upstream model: requests, uncached input, cached input,
output, reasoning, and the cost in nano-USD from the model's price (``Upstream.price``: the
upstream's ``prices:``, else the model table's list price; DeepSeek bills cache hits and misses
apart and charges no cache write). ``GET /metrics`` reads them back from the store, so every replica
shows the totals of all (``gateway_key_*``).

``key_limits`` (``concurrent``, ``per_minute``) are counted in the store too: a minute's counter
per key, and an in-flight counter taken before the upstream call and given back after it. A
replica that dies with requests in flight holds their slots until the counter expires (the
pipeline's deadline after its creation), the price of needing no lock server.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import trio

from pipeline.errors import GatewayError
from pipeline.registry import Pipeline
from pipeline.store import Store

KINDS = ("requests", "input", "cached_input", "output", "reasoning", "cost_nusd")
PREFIX = "usage:"


def _key(name: str, model: str, kind: str) -> str:
    return f"{PREFIX}{name}:{model}:{kind}"


class KeyUsage:
    """The store-backed accounting and limits of every pipeline's gateway keys."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._models: dict[str, set[str]] = {}  # key name -> upstream models seen here

    @asynccontextmanager
    async def admitted(self, pipe: Pipeline, key: str | None, deadline_s: float) -> AsyncIterator[None]:
        """Hold one of ``key``'s request slots for the body of the ``async with``.

        Raises:
            GatewayError: ``rate_limit`` (429, with Retry-After) when the key is at its
                per-minute or concurrency limit.
        """
        limits = pipe.config.key_limits
        if key is None or (limits.per_minute is None and limits.concurrent is None):
            yield
            return
        if limits.per_minute is not None:
            now = time.time()
            minute = int(now // 60)
            count = await self.store.incr(f"{PREFIX}rpm:{pipe.id}:{key}:{minute}", 1, ttl_s=120)
            if count > limits.per_minute:
                raise GatewayError(f"gateway key {key} is over its limit of {limits.per_minute} requests a minute",
                                   code="rate_limit", blame="client", retry_after_s=float(60 - int(now % 60)))
        if limits.concurrent is None:
            yield
            return
        slot = f"{PREFIX}inflight:{pipe.id}:{key}"
        if await self.store.incr(slot, 1, ttl_s=deadline_s + 60) > limits.concurrent:
            await self._release(slot)
            raise GatewayError(f"gateway key {key} already has {limits.concurrent} requests in flight",
                               code="rate_limit", blame="client", retry_after_s=1.0)
        try:
            yield
        finally:
            await self._release(slot)

    async def _release(self, slot: str) -> None:
        with trio.CancelScope(shield=True):
            if await self.store.incr(slot, -1) <= 0:
                await self.store.delete(slot)

    async def account(self, key: str, model: str, outcome: Any, price: Any) -> None:
        """Add one finished request's tokens (and cost, when ``price`` is known) to ``key``'s counters."""
        if not model:
            return
        self._models.setdefault(key, set()).add(model)
        uncached = max(outcome.input_tokens - outcome.cached_tokens, 0)
        values = {"requests": 1, "input": uncached, "cached_input": outcome.cached_tokens,
                  "output": outcome.output_tokens, "reasoning": outcome.reasoning_tokens}
        if price is not None:
            values["cost_nusd"] = round((uncached * price.input + outcome.cached_tokens * price.cached_input
                                         + outcome.output_tokens * price.output) * 1000)
        with trio.CancelScope(shield=True):  # a request cancelled at its end is still counted
            for kind, value in values.items():
                if value:
                    await self.store.incr(_key(key, model, kind), value)

    async def render(self, pipelines: Iterable[Pipeline]) -> bytes:
        """The ``gateway_key_*`` lines of ``/metrics``: every replica's totals, read from the store,
        for each configured key and each upstream model the configuration names or this process saw."""
        keys = sorted({name for pipe in pipelines if pipe.api_keys for name in pipe.config.api_keys_env})
        if not keys:
            return b""
        models = _configured_models(pipelines)
        tokens: list[str] = []
        requests: list[str] = []
        cost: list[str] = []
        for key in keys:
            for model in sorted(models | self._models.get(key, set())):
                labels = f'key="{key}",model="{model}"'
                got = {kind: await self.store.get(_key(key, model, kind)) for kind in KINDS}
                if got["requests"] is None:
                    continue
                requests.append(f"gateway_key_requests_total{{{labels}}} {int(got['requests'])}")
                for kind in ("input", "cached_input", "output", "reasoning"):
                    tokens.append(f'gateway_key_tokens_total{{kind="{kind}",{labels}}} {int(got[kind] or 0)}')
                if got["cost_nusd"] is not None:
                    cost.append(f"gateway_key_cost_usd_total{{{labels}}} {int(got['cost_nusd']) / 1e9:.9f}")
        lines = ["# HELP gateway_key_requests_total Requests per gateway key and upstream model, all replicas.",
                 "# TYPE gateway_key_requests_total counter", *requests,
                 "# HELP gateway_key_tokens_total Tokens per gateway key, upstream model and kind, all replicas.",
                 "# TYPE gateway_key_tokens_total counter", *tokens,
                 "# HELP gateway_key_cost_usd_total Cost in USD per gateway key and upstream model, all replicas.",
                 "# TYPE gateway_key_cost_usd_total counter", *cost]
        return ("\n".join(lines) + "\n").encode()


def _configured_models(pipelines: Iterable[Pipeline]) -> set[str]:
    models: set[str] = set()
    for pipe in pipelines:
        for route in pipe.routing:
            if route.model:
                models.add(route.model)
            for up in route.upstreams:
                models.update(model for _, model in up.advertised_models())
                models.update(up.config.models.values())
    return models


__all__ = ["KINDS", "KeyUsage"]
