"""Data rights: every service erases one customer's data when `customer.erasure_requested.v1` arrives,
then announces `customer.erasure_completed.v1` (in the same transaction, through the outbox).

Erasure here means: texts replaced by `ERASED`, personal fields (e-mail, name, metadata) cleared, the
customer id replaced by a pseudonym made from the erasure's random id (nothing links it back to the
customer), derived data (embeddings, training examples) deleted. Rows themselves stay where other rows
or counts depend on them (a ticket's SLA history, report totals), which is why this is anonymisation and
not deletion. Already published outbox rows that mention the customer are deleted too: their payloads
carry the texts. See docs/adr/0004-data-rights.md.
"""

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, cast
from uuid import UUID

from sqlalchemy import CursorResult, delete, or_
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from closedloop.db import truncate_wal
from closedloop.events import CustomerErasureCompletedV1, CustomerErasureRequestedV1
from closedloop.messaging.consumer import Subscription
from closedloop.messaging.tables import OutboxMixin
from closedloop.runtime import ServiceRuntime

ERASED = "[erased]"

# (session, event) -> rows changed per table. Runs in the consumer's transaction; must not commit.
Eraser = Callable[[AsyncSession, CustomerErasureRequestedV1], Awaitable[dict[str, int]]]


def pseudonym(erasure_id: UUID) -> str:
    """What replaces the customer id: random (the erasure id is a uuid4), so it reveals nothing."""
    return f"erased-{erasure_id.hex[:16]}"


def chunks(values: Iterable[str], size: int = 500) -> Iterable[list[str]]:
    values = list(values)
    for start in range(0, len(values), size):
        yield values[start:start + size]


async def erase_published_outbox(session: AsyncSession, model: type[OutboxMixin],
                                 event: CustomerErasureRequestedV1) -> int:
    """Published events whose payload names the customer or one of their feedback items or tickets.
    Unpublished ones stay: they still have to reach the other services (which then erase them too)."""
    needles = [f'"{event.customer_id}"', *(f'"{i}"' for i in event.feedback_ids),
               *(f'"{i}"' for i in event.ticket_ids)]
    if event.customer_email:
        needles.append(f'"{event.customer_email}"')
    removed = 0
    for group in chunks(needles, 100):
        result = cast(CursorResult[Any], await session.execute(delete(model).where(
            model.published_at.is_not(None), or_(*(model.payload.contains(n, autoescape=True) for n in group)))))
        removed += result.rowcount or 0
    return removed


_wal_tasks: set[asyncio.Task[None]] = set()


def empty_wal_after_commit(session: AsyncSession) -> None:
    """Once the session's transaction that erased something commits: SQLite's write-ahead log still holds
    the rows as they were before (secure_delete zeroes them in the database file only), so it is emptied,
    outside the transaction. A transaction that rolls back leaves its session, and this, behind."""
    engine = session.bind
    assert isinstance(engine, AsyncEngine), "sessions of closedloop.db.session_factory are bound to an engine"

    def on_commit(_: object) -> None:
        task = asyncio.get_running_loop().create_task(truncate_wal(engine), name="erasure-truncate-wal")
        _wal_tasks.add(task)
        task.add_done_callback(_wal_tasks.discard)

    sqlalchemy_event.listen(session.sync_session, "after_commit", on_commit, once=True)


def subscribe_erasure(runtime: ServiceRuntime, eraser: Eraser) -> None:
    """Erase on `customer.erasure_requested.v1` and announce completion, once per request (inbox)."""
    service = runtime.settings.service_name

    async def on_erasure_requested(session: AsyncSession, event: CustomerErasureRequestedV1, _: object) -> None:
        erased = await eraser(session, event)
        erased["outbox"] = await erase_published_outbox(session, runtime.outbox.model, event)
        runtime.outbox.add(session, CustomerErasureCompletedV1(erasure_id=event.erasure_id, service=service,
                                                               erased=erased))
        empty_wal_after_commit(session)

    runtime.subscribe(Subscription(
        durable=f"{service}-customer-erasure-requested", stream="CUSTOMER",
        subjects={CustomerErasureRequestedV1.nats_subject: CustomerErasureRequestedV1},
        handler=on_erasure_requested,
    ))
