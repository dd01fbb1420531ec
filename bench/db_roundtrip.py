"""CPU per SQLite transaction through each layer (ADR 0016): SQLAlchemy's asyncio session over aiosqlite (what the
services use), a synchronous SQLAlchemy session on the same file and pragmas, and plain `sqlite3`.

    .venv/bin/python bench/db_roundtrip.py

Printed, never asserted. CPU time of this whole process (aiosqlite's thread included).
"""

import asyncio
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import sessionmaker

from closedloop.db import create_engine

ROUNDS = 2000
QUERY = "SELECT count(*) FROM t WHERE a = :a"


async def through_async_session(path: Path, statements: int) -> float:
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    sessions = async_sessionmaker(engine)
    try:
        started = time.process_time()
        for i in range(ROUNDS):
            async with sessions() as session, session.begin():
                for _ in range(statements):
                    await session.execute(text(QUERY), {"a": i})
        return (time.process_time() - started) / ROUNDS * 1000
    finally:
        await engine.dispose()


def through_sync_session(path: Path, statements: int) -> float:
    engine = create_sync_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _on_begin(connection):  # type: ignore[no-untyped-def]
        connection.exec_driver_sql("BEGIN IMMEDIATE")  # as closedloop.db does

    sessions = sessionmaker(engine)
    started = time.process_time()
    for i in range(ROUNDS):
        with sessions() as session, session.begin():
            for _ in range(statements):
                session.execute(text(QUERY), {"a": i})
    engine.dispose()
    return (time.process_time() - started) / ROUNDS * 1000


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "roundtrip.db"
        with create_sync_engine(f"sqlite:///{path}").begin() as connection:
            connection.exec_driver_sql("PRAGMA journal_mode=WAL")
            connection.exec_driver_sql("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)")
        for statements in (1, 5):
            slow = asyncio.run(through_async_session(path, statements))
            fast = through_sync_session(path, statements)
            print(f"a transaction of {statements} SELECT(s): async session over aiosqlite {slow:.2f} ms CPU, "
                  f"sync session {fast:.2f} ms CPU ({slow / fast:.1f}x)")


if __name__ == "__main__":
    main()
