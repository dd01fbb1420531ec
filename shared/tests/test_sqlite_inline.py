"""The write engine's SQLite calls run on the event loop (closedloop.sqlite_inline, ADR 0016): the same
results as through aiosqlite, and a lock held by another connection is waited for without blocking the loop."""

import asyncio
import contextlib
import sqlite3
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from closedloop.db import create_engine, session_factory


async def test_writes_reads_and_rollbacks_through_the_write_engine(tmp_path):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'inline.db'}")
    sessions = session_factory(engine)
    try:
        async with sessions() as session, session.begin():
            await session.execute(text("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)"))
            await session.execute(text("INSERT INTO t (b) VALUES (:b)"), [{"b": "one"}, {"b": "two"}])
        with pytest.raises(RuntimeError):
            async with sessions() as session, session.begin():
                await session.execute(text("INSERT INTO t (b) VALUES ('rolled back')"))
                raise RuntimeError("abort")
        async with sessions() as session:
            rows = (await session.execute(text("SELECT a, b FROM t ORDER BY a"))).all()
        assert [tuple(row) for row in rows] == [(1, "one"), (2, "two")]
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def held_by_another_writer(path, busy_timeout: float):
    """The write engine's sessions on a file with a table `t`, whose write lock another connection holds (as
    another process's writer would); yields the sessions and that connection."""
    engine = create_engine(f"sqlite+aiosqlite:///{path}", busy_timeout=busy_timeout)
    sessions = session_factory(engine)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        async with sessions() as session, session.begin():
            await session.execute(text("CREATE TABLE t (a INTEGER PRIMARY KEY)"))
        other.execute("BEGIN IMMEDIATE")
        yield sessions, other
    finally:
        if other.in_transaction:
            other.execute("ROLLBACK")
        other.close()
        await engine.dispose()


async def test_a_held_lock_is_waited_for_without_blocking_the_loop(tmp_path):
    async with held_by_another_writer(tmp_path / "locked.db", busy_timeout=5.0) as (sessions, other):
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        async def release_later() -> None:
            await asyncio.sleep(0.3)
            other.execute("ROLLBACK")

        async def write() -> float:
            started = time.monotonic()
            async with sessions() as session, session.begin():
                await session.execute(text("INSERT INTO t (a) VALUES (1)"))
            return time.monotonic() - started

        ticker = asyncio.create_task(tick())
        waited, _ = await asyncio.gather(write(), release_later())
        ticker.cancel()
        assert waited >= 0.25  # it did wait for the lock ...
        assert ticks >= 10  # ... and the loop kept running meanwhile (a blocked loop ticks ~0 times)


async def test_past_the_busy_timeout_the_lock_error_goes_up(tmp_path):
    async with held_by_another_writer(tmp_path / "held.db", busy_timeout=0.2) as (sessions, _):
        with pytest.raises(OperationalError, match="database is locked"):
            async with sessions() as session, session.begin():
                await session.execute(text("INSERT INTO t (a) VALUES (1)"))
