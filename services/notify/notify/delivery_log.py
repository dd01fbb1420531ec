"""The record of every delivery notify planned: finding them, and sending one again (a replay).
Use cases; the replay owns its transaction (ADR 0014)."""

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.api import get_or_404
from closedloop.errors import conflict
from closedloop.wakeup import wake_after_commit
from notify.dispatcher import DELIVERIES_CHANNEL
from notify.models import Delivery


async def find_deliveries(session: AsyncSession, *, status: str | None, channel: str | None,
                          recipient: str | None, event_type: str | None, endpoint_id: str | None,
                          source_event_id: str | None, ticket_id: str | None, limit: int,
                          offset: int) -> tuple[list[Delivery], int]:
    """The matching deliveries, newest first, and how many match over all pages."""
    filters = []
    if status:
        filters.append(Delivery.status == status)
    if channel:
        filters.append(Delivery.channel == channel)
    if recipient:
        filters.append(Delivery.recipient == recipient)
    if ticket_id:
        filters.append(Delivery.ticket_id == ticket_id)
    if event_type:
        filters.append(Delivery.event_type == event_type)
    if endpoint_id:
        filters.append(Delivery.endpoint_id == endpoint_id)
    if source_event_id:
        filters.append(Delivery.source_event_id == source_event_id)
    total = await session.scalar(select(func.count()).select_from(Delivery).where(*filters)) or 0
    rows = await session.scalars(select(Delivery).where(*filters)
                                 .order_by(Delivery.created_at.desc(), Delivery.id).limit(limit).offset(offset))
    return list(rows), total


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
