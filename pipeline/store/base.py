"""The store interface and ``open_store``, which builds the configured implementation.

Keys are ``str``, values ``bytes``; a TTL is in seconds (``None``: kept until deleted). Every
call is async and never blocks the event loop: SQLite runs on one worker thread
(``pipeline.store.sqlite``), Redis speaks RESP on trio sockets (``pipeline.store.redis``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from pipeline.config import StoreConfig

DEFAULT_DATA_DIR = "gateway-data"  # relative to the working directory, unless GATEWAY_DATA_DIR says
SQLITE_FILE = "store.sqlite3"


class StoreError(Exception):
    """The store could not be reached or answered with an error (the message says which)."""


class Store(Protocol):
    """What the gateway keeps between requests. ``where`` names it for ``check`` and the logs."""

    where: str

    async def open(self) -> None:
        """Connect / create; raises ``StoreError`` naming what failed."""
        ...

    async def get(self, key: str) -> bytes | None:
        """The value, or ``None`` when absent or expired."""
        ...

    async def put(self, key: str, value: bytes, ttl_s: float | None = None) -> None: ...

    async def delete(self, key: str) -> bool:
        """Whether the key was there."""
        ...

    async def incr(self, key: str, by: int = 1, ttl_s: float | None = None) -> int:
        """Add ``by`` to the counter (absent or expired: 0) and return it; ``ttl_s`` is set when
        the counter is created, so a window counter expires with its window."""
        ...

    async def aclose(self) -> None: ...


def data_dir(config: StoreConfig) -> Path:
    """The sqlite store's directory: ``data_dir``, else ``$GATEWAY_DATA_DIR``, else ./gateway-data."""
    return Path(config.data_dir or os.environ.get("GATEWAY_DATA_DIR") or DEFAULT_DATA_DIR)


def open_store(config: StoreConfig) -> Store:
    """The configured store, not yet opened (``await store.open()``)."""
    if config.backend == "memory":
        from pipeline.store.memory import MemoryStore

        return MemoryStore()
    if config.backend == "redis":
        from pipeline.store.redis import RedisStore

        assert config.url is not None  # the config requires it
        return RedisStore(config.url, prefix=config.key_prefix, timeout_s=config.timeout_s)
    from pipeline.store.sqlite import SqliteStore

    return SqliteStore(data_dir(config) / SQLITE_FILE)


__all__ = ["DEFAULT_DATA_DIR", "SQLITE_FILE", "Store", "StoreError", "data_dir", "open_store"]
