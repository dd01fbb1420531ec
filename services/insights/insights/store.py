"""Writing the sums: a handler stages deltas in its session; they are folded into the aggregate rows
with one multi-row upsert when the transaction commits (and dropped if it rolls back).

A batch of a few hundred events touches the same (bucket, dimension, metric) rows again and again:
summed in memory first, the commit writes each row once, instead of once per event.
"""

from datetime import datetime
from typing import TypeVar, cast

from sqlalchemy import event, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from insights.dimensions import RAW_METRICS, Deltas, fan_out, new_deltas
from insights.models import Aggregate, Base

DELTAS_KEY = "insights.deltas"
CACHE_KEY = "insights.cache"
PRELOADED_KEY = "insights.preloaded"
PENDING_KEY = "insights.pending"
LOCKED_KEY = "insights.locked"
SESSION_KEYS = (DELTAS_KEY, CACHE_KEY, PRELOADED_KEY, PENDING_KEY, LOCKED_KEY)


def contribute(session: AsyncSession, at: datetime, dims: dict[str, str], metrics: dict[str, float]) -> None:
    deltas = session.info.get(DELTAS_KEY)
    if deltas is None:
        deltas = session.info[DELTAS_KEY] = new_deltas()
    fan_out(deltas, at, dims, metrics)


def cache(session: AsyncSession) -> dict[tuple[type, str], object]:
    """Facts created in this transaction by id. The consumer handles a batch without autoflush, so a fact
    added by an earlier event of the batch is not yet visible to a query or to `session.get`."""
    return session.info.setdefault(CACHE_KEY, {})


MISSING = object()  # cached: looked up, not in the database
FactT = TypeVar("FactT", bound=Base)


async def get_fact(session: AsyncSession, model: type[FactT], key: str, fresh: bool = False) -> FactT | None:
    """`fresh`: ask the database again if it was missing (after taking a lock another transaction held)."""
    found = cache(session).get((model, key))
    if found is MISSING and not fresh:
        return None
    if found is MISSING:
        found = None
    if found is None:
        found = await session.get(model, key)
        cache(session)[(model, key)] = MISSING if found is None else found
    return cast(FactT | None, found)  # MISSING became None above; the rest are `model`'s


async def preload(session: AsyncSession, wanted: dict[type[Base], set[str]]) -> None:
    """Load the facts a batch will touch with one query per kind instead of one per event (once per
    transaction); what is not found is remembered as missing."""
    if session.info.get(PRELOADED_KEY):
        return
    session.info[PRELOADED_KEY] = True
    known = cache(session)
    for model, keys in wanted.items():
        keys = {k for k in keys if (model, k) not in known}
        column = model.__mapper__.primary_key[0]
        assert column.key is not None  # a table's column always has a key: its name unless given another
        for chunk in _chunks(sorted(keys), 500):
            for fact in await session.scalars(select(model).where(column.in_(chunk))):
                known[(model, getattr(fact, column.key))] = fact
        for key in keys:
            known.setdefault((model, key), MISSING)


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def add_fact(session: AsyncSession, model: type, key: str, fact: object) -> None:
    session.add(fact)
    cache(session)[(model, key)] = fact


KEY_COLUMNS = ("grain", "d1", "d2", "v1", "v2", "bucket")
SQLITE_UPSERT = (
    f"INSERT INTO aggregates ({', '.join(KEY_COLUMNS + RAW_METRICS)}) "
    f"VALUES ({', '.join('?' * (len(KEY_COLUMNS) + len(RAW_METRICS)))}) "
    f"ON CONFLICT ({', '.join(KEY_COLUMNS)}) DO UPDATE SET "
    + ", ".join(f"{m} = {m} + excluded.{m}" for m in RAW_METRICS))


def upsert_deltas(session: Session, deltas: Deltas) -> None:
    # Sorted keys: two replicas upserting overlapping rows lock them in the same order (no deadlock), and
    # SQLite walks its b-tree in order.
    keys = sorted(deltas)
    dialect = session.get_bind().dialect
    if dialect.name == "sqlite":
        # The driver's executemany directly: through the ORM each row cost ~65 us of Python (type processing,
        # parameter dicts); a read model catching up writes hundreds of thousands of them.
        to_db = Aggregate.__table__.c.bucket.type.dialect_impl(dialect).bind_processor(dialect)
        buckets: dict[object, object] = {}
        rows = []
        for key in keys:
            bucket = key[5]
            stored = buckets.get(bucket)
            if stored is None:
                stored = buckets[bucket] = to_db(bucket) if to_db else bucket
            sums = deltas[key]
            rows.append((*key[:5], stored, *(sums.get(m, 0.0) for m in RAW_METRICS)))
        session.connection().exec_driver_sql(SQLITE_UPSERT, rows)
        return
    table = Aggregate.__table__
    statement = postgresql_insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=list(KEY_COLUMNS), set_={m: table.c[m] + statement.excluded[m] for m in RAW_METRICS})
    params = [{**dict(zip(KEY_COLUMNS, key, strict=True)), **{m: deltas[key].get(m, 0.0) for m in RAW_METRICS}}
              for key in keys]
    for start in range(0, len(params), 1000):
        session.execute(statement, params[start:start + 1000])


@event.listens_for(Session, "before_commit")
def _write_deltas(session: Session) -> None:
    deltas: Deltas | None = session.info.pop(DELTAS_KEY, None)
    for key in SESSION_KEYS:
        session.info.pop(key, None)
    if not deltas:
        return
    session.flush()  # the facts first: a failure there must not leave sums without their facts
    upsert_deltas(session, deltas)


@event.listens_for(Session, "after_soft_rollback")
def _drop_deltas(session: Session, previous_transaction: SessionTransaction) -> None:
    if not previous_transaction.nested:
        for key in SESSION_KEYS:
            session.info.pop(key, None)

