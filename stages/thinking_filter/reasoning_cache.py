"""The reasoning cache: rung 2 of the replay ladder, keyed by tool call id (and by digest).

``ReasoningStore`` is the interface (a Redis-backed store for many replicas implements the same
two methods); ``MemoryStore`` is the embedded default: in-process, bounded (LRU), with a TTL.
Stores are shared per process by name, so every pipeline of one gateway sees the same entries.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol


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


_STORES: dict[str, MemoryStore] = {}


def shared_store(name: str, **kwargs: Any) -> MemoryStore:
    """The process-wide store called ``name`` (created on first use with ``kwargs``)."""
    store = _STORES.get(name)
    if store is None:
        store = _STORES[name] = MemoryStore(**kwargs)
    return store


__all__ = ["MemoryStore", "ReasoningStore", "shared_store"]
