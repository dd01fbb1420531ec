"""SQLite for the write engine without a thread hop per call (ADR 0016).

SQLAlchemy's asyncio dialect for SQLite drives `aiosqlite`, which runs every call (cursor, execute, fetch,
close, commit) on a thread of its own and hands the result back to the event loop: four hops for one
`SELECT`, about 1.1 ms of CPU for a transaction whose SQLite work takes 0.01 ms (`bench/db_roundtrip.py`).
This module offers the same small interface that SQLAlchemy's aiosqlite adapter calls, but runs each call
at once on the calling thread (the event loop's), through plain `sqlite3`. SQLAlchemy is handed it with
the adapter's `async_creator_fn` hook, so the dialect, its SQL and its error handling stay SQLAlchemy's.

What it trades: a call blocks the event loop while SQLite works. Our write transactions are a few short
statements (microseconds each, the commit's fsync ~0.25 ms), so that is cheaper than the hops. Waiting
for another connection's write lock must not block the loop, though (the other writer may be waiting for
this very loop to finish its transaction): SQLite's own busy handler is set to 0, and a statement that
finds the database locked is retried after an `asyncio.sleep` (1 ms, doubling to 50 ms) until the busy
timeout the engine asked for (`PRAGMA busy_timeout`, or `timeout=`) has passed; then the "database is
locked" error goes up as before (a 503, closedloop.api). A failed step of a locked statement changed
nothing, and SQLite documents BEGIN and COMMIT as safe to retry. A large write still blocks the loop while
it runs (retention and erasure delete in bounded batches). Reads that scan — reports, lists, exports —
run on the read engine, which keeps aiosqlite's thread (`closedloop.db.read_engine`).
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")
_BUSY_TIMEOUT_PRAGMA = re.compile(r"\s*PRAGMA\s+busy_timeout\s*=\s*(\d+)\s*;?\s*$", re.IGNORECASE)
_FIRST_RETRY_SECONDS = 0.001
_LONGEST_RETRY_SECONDS = 0.05


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


async def _when_not_busy(call: Callable[[], T], busy_timeout: float) -> T:
    """`call()`, retried without blocking the loop while the database is locked, for up to `busy_timeout`."""
    deadline: float | None = None
    delay = _FIRST_RETRY_SECONDS
    while True:
        try:
            return call()
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                raise
            now = time.monotonic()
            deadline = deadline if deadline is not None else now + busy_timeout
            if now >= deadline:
                raise
            await asyncio.sleep(min(delay, deadline - now))
            delay = min(delay * 2, _LONGEST_RETRY_SECONDS)


class InlineCursor:
    """A `sqlite3` cursor with aiosqlite's awaitable methods."""

    def __init__(self, cursor: sqlite3.Cursor, connection: InlineConnection) -> None:
        self._cursor = cursor
        self._connection = connection

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    async def execute(self, sql: str, parameters: Any = None) -> InlineCursor:
        pragma = _BUSY_TIMEOUT_PRAGMA.match(sql)
        if pragma:  # the wait is ours (above), SQLite's own handler would block the loop
            self._connection.busy_timeout = int(pragma.group(1)) / 1000
            self._cursor.execute("PRAGMA busy_timeout=0")
            return self
        arguments = (sql,) if parameters is None else (sql, parameters)
        await _when_not_busy(lambda: self._cursor.execute(*arguments), self._connection.busy_timeout)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> InlineCursor:
        rows = list(parameters)  # a generator would be spent by a first, locked, attempt
        await _when_not_busy(lambda: self._cursor.executemany(sql, rows), self._connection.busy_timeout)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class _RunNow:
    """Stands in for aiosqlite's queue to its thread: SQLAlchemy's adapter sets the isolation level by
    putting `(future, function)` on it; here the function runs at once."""

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except BaseException as exc:  # handed to the awaiting caller, as aiosqlite does
            future.set_exception(exc)


class InlineConnection:
    """A `sqlite3` connection with the part of aiosqlite's `Connection` that SQLAlchemy calls."""

    def __init__(self, connection: sqlite3.Connection, busy_timeout: float) -> None:
        self._conn = connection
        self._tx = _RunNow()
        self.busy_timeout = busy_timeout  # seconds a statement may wait for the lock, without blocking

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    async def cursor(self) -> InlineCursor:
        return InlineCursor(self._conn.cursor(), self)

    async def execute(self, sql: str, parameters: Any = None) -> InlineCursor:
        return await InlineCursor(self._conn.cursor(), self).execute(sql, parameters)

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def commit(self) -> None:
        await _when_not_busy(self._conn.commit, self.busy_timeout)

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        self._conn.close()

    def stop(self) -> None:
        """SQLAlchemy's forced close (a connection it gives up on)."""
        self._conn.close()


async def connect(database: str, *, timeout: float = 5.0, **kwargs: Any) -> InlineConnection:
    """`async_creator_fn` for SQLAlchemy's aiosqlite dialect: the arguments `sqlite3.connect` takes, `timeout`
    being the busy timeout. `check_same_thread` is off: the pool may close a connection from another thread."""
    kwargs.pop("check_same_thread", None)
    connection = sqlite3.connect(database, timeout=0, check_same_thread=False, **kwargs)
    return InlineConnection(connection, busy_timeout=timeout)
