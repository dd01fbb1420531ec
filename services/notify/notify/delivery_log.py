"""The record of every delivery notify planned: finding them, and sending one again (a replay).
Use cases; the replay owns its transaction (ADR 0014)."""

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.api import get_or_404
from closedloop.errors import conflict
from closedloop.pagination import KeysetPage, keyset_page
from closedloop.wakeup import wake_after_commit
from notify.dispatcher import DELIVERIES_CHANNEL
from notify.models import Delivery

# Newest first; the id orders deliveries planned at the same instant (one event's are).
ORDER = (Delivery.created_at, Delivery.id)


async def find_deliveries(session: AsyncSession, *, status: str | None, channel: str | None,
                          recipient: str | None, event_type: str | None, endpoint_id: str | None,
                          source_event_id: str | None, ticket_id: str | None, limit: int, cursor: str | None,
                          offset: int = 0) -> KeysetPage[Delivery]:
    """A page of the matching deliveries, newest first, with how many match over all pages. `offset`
    (the deprecated way to page, ignored with a `cursor`) skips that many rows; its page continues by
    cursor like any other."""
    query = select(Delivery)
    if status:
        query = query.where(Delivery.status == status)
    if channel:
        query = query.where(Delivery.channel == channel)
    if recipient:
        query = query.where(Delivery.recipient == recipient)
    if ticket_id:
        query = query.where(Delivery.ticket_id == ticket_id)
    if event_type:
        query = query.where(Delivery.event_type == event_type)
    if endpoint_id:
        query = query.where(Delivery.endpoint_id == endpoint_id)
    if source_event_id:
        query = query.where(Delivery.source_event_id == source_event_id)
    return await keyset_page(session, query, order=ORDER, limit=limit, cursor=cursor, offset=offset)


async def replay_delivery(session: AsyncSession, delivery_id: str) -> Delivery:
    """Schedule the delivery again, its payload exactly as planned and its attempts from zero."""
    async with session.begin():
        delivery = await get_or_404(session, Delivery, delivery_id, "Delivery")
        if delivery.status == "pending":
            raise conflict("It is already scheduled to be sent.", slug="delivery-pending",
                           title="Delivery still pending")
        if not delivery.payload:
            raise conflict("This delivery could not be rendered: " + (delivery.reason or ""), slug="delivery-empty",
                           title="Nothing to send")
        if delivery.status == "suppressed":
            delivery.reason = f"replayed despite: {delivery.reason}"
        delivery.status, delivery.attempts = "pending", 0
        delivery.next_attempt_at, delivery.leased_until = datetime.now(UTC), None
        wake_after_commit(session, DELIVERIES_CHANNEL)
    return delivery
