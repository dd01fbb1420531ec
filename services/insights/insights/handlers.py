"""What insights does with each event it consumes: one method per subscription, with the consumer's
signature `(session, event, prepared)`, run inside the consumer's transaction (never committing).

A subscription here reads a whole stream (`feedback.>`, `ticket.>`, `notification.>`), because the read
model must see every event of it in order; the work for each event type is in readmodel.py."""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events import Event, FeedbackClassifiedV1, FeedbackReceivedV1
from insights import readmodel
from insights.models import Base, FeedbackFact

BatchKeys = dict[type[Base], set[str]]


class Handlers:
    def __init__(self, opportunity_categories: list[str]) -> None:
        self.opportunity_categories = list(opportunity_categories)

    async def prepare_feedback_event(self, events: list[Event]) -> BatchKeys:
        return readmodel.feedback_batch_keys(events)

    async def on_feedback_event(self, session: AsyncSession, event: Event, prepared: BatchKeys | None = None) -> None:
        await readmodel.start_batch(session, prepared)
        if isinstance(event, FeedbackReceivedV1):
            await readmodel.record_feedback_received(session, event)
        elif isinstance(event, FeedbackClassifiedV1):
            await readmodel.record_feedback_classified(session, event, self.opportunity_categories,
                                                       (prepared or {}).get(FeedbackFact, set()))

    async def prepare_ticket_event(self, events: list[Event]) -> BatchKeys:
        return readmodel.ticket_batch_keys(events)

    async def on_ticket_event(self, session: AsyncSession, event: Event, prepared: BatchKeys | None = None) -> None:
        await readmodel.start_batch(session, prepared)
        await readmodel.record_ticket_event(session, event)

    async def on_notification_event(self, session: AsyncSession, event: Event, prepared: Any = None) -> None:
        readmodel.record_notification(session, event)
