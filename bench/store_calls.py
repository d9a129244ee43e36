"""Measure one store call: get and put of a stored-Response-sized value, per backend.

Run: python bench/store_calls.py (needs redis-server on PATH for the redis rows; with redis-py
importable, also its sync client on a worker thread, the alternative the RESP client was chosen
over). Reports microseconds per call, one task after another and 16 tasks at once (wall time per
call), on a loopback redis-server with nothing persisted. Informs README "Store".
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.store.memory import MemoryStore  # noqa: E402
from pipeline.store.redis import RedisStore  # noqa: E402
from pipeline.store.sqlite import SqliteStore  # noqa: E402
from tests.redis_server import redis_server  # noqa: E402

N = 2000
VALUE = b"x" * 8192  # one turn's record: a few output items


class RedisPyThread:
    """redis-py's sync client, each call on a trio worker thread."""

    def __init__(self, url: str) -> None:
        import redis

        self._client = redis.Redis.from_url(url)

    async def open(self) -> None:
        await trio.to_thread.run_sync(self._client.ping)

    async def get(self, key: str) -> Any:
        return await trio.to_thread.run_sync(self._client.get, key)

    async def put(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        await trio.to_thread.run_sync(lambda: self._client.set(key, value, px=int(ttl_s * 1000) if ttl_s else None))

    async def aclose(self) -> None:
        self._client.close()


async def timed(store: Any) -> tuple[float, float, float]:
    await store.open()
    await store.put("warm", VALUE, 60.0)
    start = time.perf_counter()
    for i in range(N):
        await store.put(f"k{i % 100}", VALUE, 60.0)
    put = (time.perf_counter() - start) / N
    start = time.perf_counter()
    for i in range(N):
        await store.get(f"k{i % 100}")
    get = (time.perf_counter() - start) / N

    async def worker(j: int) -> None:
        for i in range(N // 16):
            await store.get(f"k{(i + j) % 100}")

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for j in range(16):
            nursery.start_soon(worker, j)
    concurrent = (time.perf_counter() - start) / (N // 16 * 16)
    await store.aclose()
    return put, get, concurrent


async def main() -> None:
    print(f"{'backend':<34} {'put us':>8} {'get us':>8} {'get x16 us':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        rows: list[tuple[str, Any]] = [("memory", MemoryStore()),
                                       ("sqlite (worker thread)", SqliteStore(Path(tmp) / "s.sqlite3"))]
        with redis_server(Path(tmp) / "redis") as url:
            rows.append(("redis, RESP on trio sockets", RedisStore(url)))
            try:
                import redis  # noqa: F401

                rows.append((f"redis-py {redis.__version__} sync, worker thread", RedisPyThread(url)))
            except ImportError:
                pass
            for name, store in rows:
                put, get, concurrent = await timed(store)
                print(f"{name:<34} {put * 1e6:8.1f} {get * 1e6:8.1f} {concurrent * 1e6:11.1f}")


if __name__ == "__main__":
    trio.run(main)
