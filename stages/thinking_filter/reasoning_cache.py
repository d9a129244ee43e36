"""The reasoning cache: rung 2 of the replay ladder, keyed by tool call id (and by digest).

``ReasoningStore`` is the interface (a Redis-backed store for many replicas implements the same
two methods); ``MemoryStore`` is the embedded default: in-process, bounded (LRU), with a TTL.
Stores are shared per process by name *and limits*: every pipeline of one gateway configured alike
sees the same entries, and a pipeline configured otherwise gets a store with its own limits (the
first pipeline's options never bound a second's). ``reset_stores`` forgets them (tests).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol


class ReasoningStore(Protocol):
    def put(self, key: str, text: str) -> None: ...

    def get(self, key: str) -> str | None: ...


class MemoryStore:
    """A bounded LRU with a TTL. Sync and cheap: one dict operation per call."""

    def __init__(self, *, max_entries: int = 10_000, max_bytes: int = 64 * 1024 * 1024, ttl_s: float = 6 * 3600,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries, self.max_bytes, self.ttl_s = max_entries, max_bytes, ttl_s
        self._clock = clock
        self._data: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._bytes = 0

    def put(self, key: str, text: str) -> None:
        now = self._clock()
        old = self._data.pop(key, None)
        if old is not None:
            self._bytes -= len(old[1])
        self._data[key] = (now + self.ttl_s, text)
        self._bytes += len(text)
        while self._data and (len(self._data) > self.max_entries or self._bytes > self.max_bytes):
            _, (_, dropped) = self._data.popitem(last=False)
            self._bytes -= len(dropped)

    def get(self, key: str) -> str | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        expires, text = entry
        if expires < self._clock():
            del self._data[key]
            self._bytes -= len(text)
            return None
        self._data.move_to_end(key)
        return text

    def __len__(self) -> int:
        return len(self._data)


_STORES: dict[tuple[str, int, int, float], MemoryStore] = {}


def shared_store(name: str, *, max_entries: int, max_bytes: int, ttl_s: float) -> MemoryStore:
    """The process-wide store called ``name`` with these limits (created on first use): the same
    name and limits give the same store, other limits another one."""
    key = (name, max_entries, max_bytes, ttl_s)
    store = _STORES.get(key)
    if store is None:
        store = _STORES[key] = MemoryStore(max_entries=max_entries, max_bytes=max_bytes, ttl_s=ttl_s)
    return store


def reset_stores() -> None:
    """Forget every shared store (for tests): a stage built afterwards starts with an empty one;
    a stage built before keeps the store it holds."""
    _STORES.clear()


__all__ = ["MemoryStore", "ReasoningStore", "reset_stores", "shared_store"]
