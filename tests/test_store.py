"""The store's one interface on each implementation (pipeline/store): memory, the embedded SQLite
file, a real redis-server. Values up to MBs, TTLs that expire, atomic counters under concurrent
tasks, the file surviving a reopen, and what a dead server or a bad config says."""

from __future__ import annotations

import os
from itertools import count
from pathlib import Path

import pytest
import trio

from pipeline.config import StoreConfig, parse_config
from pipeline.errors import ConfigError
from pipeline.store import Store, open_store
from pipeline.store.base import StoreError
from pipeline.store.redis import RedisStore
from pipeline.store.sqlite import SqliteStore

PREFIXES = count()


@pytest.fixture(params=["memory", "sqlite", "redis"])
def config(request: pytest.FixtureRequest, tmp_path: Path) -> StoreConfig:
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        return StoreConfig(backend="redis", url=url, key_prefix=f"t{next(PREFIXES)}:")
    if request.param == "sqlite":
        return StoreConfig(backend="sqlite", data_dir=str(tmp_path / "data"))
    return StoreConfig(backend="memory")


async def opened(config: StoreConfig) -> Store:
    store = open_store(config)
    await store.open()
    return store


async def test_get_put_delete(config: StoreConfig) -> None:
    store = await opened(config)
    try:
        assert await store.get("a") is None
        big = os.urandom(3 * 1024 * 1024)  # binary, and larger than one socket read
        await store.put("a", big)
        await store.put("b\x00ü", b"")
        assert await store.get("a") == big
        assert await store.get("b\x00ü") == b""
        assert await store.delete("a") is True
        assert await store.delete("a") is False
        assert await store.get("a") is None
    finally:
        await store.aclose()


async def test_ttl_expires(config: StoreConfig) -> None:
    store = await opened(config)
    try:
        await store.put("short", b"x", ttl_s=0.2)
        await store.put("long", b"y", ttl_s=60)
        assert await store.get("short") == b"x"
        await trio.sleep(0.35)
        assert await store.get("short") is None
        assert await store.delete("short") is False
        assert await store.get("long") == b"y"
    finally:
        await store.aclose()


async def test_counters_are_atomic(config: StoreConfig) -> None:
    store = await opened(config)
    try:
        async with trio.open_nursery() as nursery:
            for _ in range(50):
                nursery.start_soon(store.incr, "n", 2, 60.0)
        assert await store.incr("n", 0) == 100
        assert await store.get("n") == b"100"
        assert await store.incr("w", 1, ttl_s=0.2) == 1
        assert await store.incr("w", 1, ttl_s=0.2) == 2  # the TTL is the window's, set once
        await trio.sleep(0.35)
        assert await store.incr("w", 1, ttl_s=0.2) == 1
    finally:
        await store.aclose()


async def test_sqlite_survives_a_reopen(tmp_path: Path) -> None:
    first = SqliteStore(tmp_path / "s.sqlite3")
    await first.open()
    await first.put("k", b"v" * 100_000, ttl_s=60)
    await first.aclose()
    second = SqliteStore(tmp_path / "s.sqlite3")
    await second.open()
    assert await second.get("k") == b"v" * 100_000
    await second.aclose()


async def test_redis_reconnects_after_a_server_restart(tmp_path: Path) -> None:
    """The pooled connections die with the server; the next call opens a new one, and while the
    server is down a call is an error naming it, not a hang."""
    from tests.redis_server import free_port, redis_server

    port = free_port()
    with redis_server(tmp_path / "a", port) as url:
        store = RedisStore(url, timeout_s=2)
        await store.open()
        async with trio.open_nursery() as nursery:  # several pooled connections
            for i in range(4):
                nursery.start_soon(store.put, f"k{i}", b"1")
    with pytest.raises(StoreError, match=r"store redis 127\.0\.0\.1"):
        await store.get("k0")
    with redis_server(tmp_path / "b", port):
        assert await store.get("k0") is None  # a new, empty server, reached
        await store.put("k0", b"2")
        assert await store.get("k0") == b"2"
    await store.aclose()


async def test_unreachable_redis_is_one_line(tmp_path: Path) -> None:
    from tests.redis_server import free_port

    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout_s=1)
    with pytest.raises(StoreError, match=r"store redis 127\.0\.0\.1:\d+/0 .*failed"):
        await store.open()


def test_config_is_checked() -> None:
    base = "upstreams: {sim: {type: simulator}}\npipelines: {p: {client: chat, upstream: sim}}\n"
    assert parse_config(base).store == StoreConfig()
    assert parse_config(base + "store: {backend: redis, url: 'redis://h:1/2'}").store.url == "redis://h:1/2"
    for bad, message in [("store: {backend: redis}", "needs `url`"),
                         ("store: {backend: redis, url: 'http://h'}", "expected redis://"),
                         ("store: {backend: memory, data_dir: x}", "data_dir is for backend sqlite"),
                         ("store: {backend: mongo}", "store.backend"),
                         ("store: {responses_ttl_s: 0}", "responses_ttl_s")]:
        with pytest.raises(ConfigError, match=message):
            parse_config(base + bad)
