"""The embedded store: one SQLite file in the data directory, no server (the default).

sqlite3 blocks, so every call runs on a worker thread (``trio.to_thread.run_sync``) holding the
one connection, behind a ``CapacityLimiter(1)``: one statement at a time, in order, and the event
loop never waits on the disk. WAL journal, ``synchronous=NORMAL`` (a committed write survives a
crash of the process; a power cut may lose the last ones), a busy timeout so that several
processes on one file (a restart overlapping the old one) wait for each other instead of failing.
Expired rows are not returned, and are swept at open and every ``SWEEP_EVERY`` writes.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any, TypeVar

import trio

from pipeline.store.base import StoreError

SWEEP_EVERY = 1000
T = TypeVar("T")

_SCHEMA = """CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value BLOB,
    expires REAL
) WITHOUT ROWID"""


class SqliteStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = f"sqlite {path}"
        self._conn: sqlite3.Connection | None = None
        self._limiter = trio.CapacityLimiter(1)
        self._writes = 0

    async def _run(self, fn: Any, *args: Any) -> Any:
        try:
            return await trio.to_thread.run_sync(fn, *args, limiter=self._limiter)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.where}: {exc}") from None

    async def open(self) -> None:
        try:
            await trio.to_thread.run_sync(self._open, limiter=self._limiter)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"store {self.where}: cannot open: {exc}") from None

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10.0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(_SCHEMA)
        conn.execute("DELETE FROM kv WHERE expires <= ?", (time.time(),))
        self._conn = conn

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise sqlite3.ProgrammingError("the store is not open")
        return self._conn

    async def get(self, key: str) -> bytes | None:
        return await self._run(self._get, key)

    def _get(self, key: str) -> bytes | None:
        row = self._db().execute("SELECT value FROM kv WHERE key = ? AND (expires IS NULL OR expires > ?)",
                                 (key, time.time())).fetchone()
        if row is None:
            return None
        value = row[0]
        return str(value).encode() if isinstance(value, int) else bytes(value)

    async def put(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        await self._run(self._put, key, value, ttl_s)

    def _put(self, key: str, value: bytes, ttl_s: float | None) -> None:
        now = time.time()
        db = self._db()
        db.execute("INSERT OR REPLACE INTO kv (key, value, expires) VALUES (?, ?, ?)",
                   (key, value, None if ttl_s is None else now + ttl_s))
        self._writes += 1
        if self._writes % SWEEP_EVERY == 0:
            db.execute("DELETE FROM kv WHERE expires <= ?", (now,))

    async def delete(self, key: str) -> bool:
        return await self._run(self._delete, key)

    def _delete(self, key: str) -> bool:
        cur = self._db().execute("DELETE FROM kv WHERE key = ? AND (expires IS NULL OR expires > ?)",
                                 (key, time.time()))
        return cur.rowcount > 0

    async def incr(self, key: str, by: int = 1, ttl_s: float | None = None) -> int:
        return await self._run(self._incr, key, by, ttl_s)

    def _incr(self, key: str, by: int, ttl_s: float | None) -> int:
        now = time.time()
        db = self._db()
        db.execute("BEGIN IMMEDIATE")  # other processes on the file wait: read-modify-write is atomic
        try:
            row = db.execute("SELECT value, expires FROM kv WHERE key = ?", (key,)).fetchone()
            if row is None or (row[1] is not None and row[1] <= now):
                total, expires = by, None if ttl_s is None else now + ttl_s
            else:
                total, expires = int(row[0]) + by, row[1]
            db.execute("INSERT OR REPLACE INTO kv (key, value, expires) VALUES (?, ?, ?)", (key, total, expires))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return total

    async def aclose(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await trio.to_thread.run_sync(conn.close, limiter=self._limiter)


__all__ = ["SWEEP_EVERY", "SqliteStore"]
