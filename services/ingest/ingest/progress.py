"""Keeping each feedback's visible status up to date from classify and ticketing events (called by the
handlers, in the consumer's transaction)."""

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events import FeedbackClassifiedV1, TicketCreatedV1, TicketFeedbackAttachedV1, TicketResolvedV1
from ingest.models import STATUS_ORDER, Feedback


def _advance(feedback: Feedback, status: str) -> None:
    if STATUS_ORDER.index(status) > STATUS_ORDER.index(feedback.status):
        feedback.status = status
    feedback.updated_at = datetime.now(UTC)


async def record_classification(session: AsyncSession, event: FeedbackClassifiedV1) -> None:
    feedback = await session.get(Feedback, str(event.feedback_id))
    if feedback is None:
        return  # not ours (another ingest deployment) or already purged
    feedback.category = event.classification.category
    feedback.sentiment = event.classification.sentiment
    _advance(feedback, "classified")


async def follow_ticket(session: AsyncSession,
                        event: TicketCreatedV1 | TicketFeedbackAttachedV1 | TicketResolvedV1) -> None:
    ticket_id = str(event.ticket.ticket_id)
    # Attached feedback is named by the event itself; the others by the ticket they opened.
    feedback_id = event.feedback_id if isinstance(event, TicketFeedbackAttachedV1) else event.ticket.feedback_id
    feedback = await session.get(Feedback, str(feedback_id)) if feedback_id else None
    if feedback is not None and feedback.ticket_id is None:
        feedback.ticket_id = ticket_id
    if isinstance(event, TicketResolvedV1):
        # Every item on the ticket is resolved with it, including feedback attached to it later.
        for item in await session.scalars(select(Feedback).where(Feedback.ticket_id == ticket_id)):
            _advance(item, "resolved")
    elif feedback is not None:
        _advance(feedback, "ticket_opened")
