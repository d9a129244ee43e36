"""The in-memory store: this process only, gone with it (tests, a throwaway gateway)."""

from __future__ import annotations

import time

import trio


class MemoryStore:
    where = "memory (this process only)"

    def __init__(self) -> None:
        self._data: dict[str, tuple[bytes | int, float | None]] = {}

    async def open(self) -> None:
        await trio.lowlevel.checkpoint()

    def _live(self, key: str) -> bytes | int | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires is not None and expires <= time.time():
            del self._data[key]
            return None
        return value

    async def get(self, key: str) -> bytes | None:
        await trio.lowlevel.checkpoint()
        value = self._live(key)
        return str(value).encode() if isinstance(value, int) else value

    async def put(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        await trio.lowlevel.checkpoint()
        self._data[key] = (bytes(value), None if ttl_s is None else time.time() + ttl_s)

    async def delete(self, key: str) -> bool:
        await trio.lowlevel.checkpoint()
        return self._live(key) is not None and self._data.pop(key, None) is not None

    async def incr(self, key: str, by: int = 1, ttl_s: float | None = None) -> int:
        await trio.lowlevel.checkpoint()
        value = self._live(key)
        if value is None:
            self._data[key] = (by, None if ttl_s is None else time.time() + ttl_s)
            return by
        total = int(value) + by
        self._data[key] = (total, self._data[key][1])
        return total

    async def aclose(self) -> None:
        self._data.clear()


__all__ = ["MemoryStore"]
