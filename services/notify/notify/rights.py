"""Data rights, notify's part: deliveries about the customer's tickets, or addressed to them, lose their
payload (the rendered message or the event JSON), and their address where it is the customer's."""

from typing import Any, cast

from sqlalchemy import CursorResult, delete, or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.erasure import ERASED, chunks
from closedloop.events import CustomerErasureRequestedV1
from notify.models import Delivery, ThreadMessage


async def erase_customer(session: AsyncSession, event: CustomerErasureRequestedV1) -> dict[str, int]:
    erased, threads = 0, 0
    for group in chunks(event.ticket_ids):
        erased += cast(CursorResult[Any], await session.execute(update(Delivery).where(
            Delivery.ticket_id.in_(group)).values(payload=ERASED, last_error=None))).rowcount or 0
        # The e-mail conversation's message ids (they thread our answers to the customer).
        threads += cast(CursorResult[Any], await session.execute(
            delete(ThreadMessage).where(ThreadMessage.ticket_id.in_(group)))).rowcount or 0
    # Deliveries recorded without a ticket id (before it was kept for every ticket event) still carry the
    # feedback id in their payload.
    for group in chunks(event.feedback_ids, 100):
        erased += cast(CursorResult[Any], await session.execute(update(Delivery).where(
            Delivery.payload != ERASED, or_(*(Delivery.payload.contains(i, autoescape=True) for i in group)))
            .values(payload=ERASED, last_error=None))).rowcount or 0
    if event.customer_email:
        email = event.customer_email
        erased += cast(CursorResult[Any], await session.execute(update(Delivery).where(
            Delivery.recipient == email).values(payload=ERASED, recipient=None, target=ERASED, last_error=None))
        ).rowcount or 0
        # A delivery about their ticket but counted above still names them as its target.
        await session.execute(update(Delivery).where(Delivery.target == email).values(target=ERASED))
    return {"deliveries": erased, "thread_messages": threads}
