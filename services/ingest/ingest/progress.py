"""Keeping each feedback's visible status up to date from classify and ticketing events."""

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events import FeedbackClassifiedV1, TicketCreatedV1, TicketResolvedV1
from ingest.models import STATUS_ORDER, Feedback


def _advance(feedback: Feedback, status: str) -> None:
    if STATUS_ORDER.index(status) > STATUS_ORDER.index(feedback.status):
        feedback.status = status
    feedback.updated_at = datetime.now(UTC)


async def on_feedback_classified(session: AsyncSession, event: FeedbackClassifiedV1, _: object) -> None:
    feedback = await session.get(Feedback, str(event.feedback_id))
    if feedback is None:
        return  # not ours (another ingest deployment) or already purged
    feedback.category = event.classification.category
    feedback.sentiment = event.classification.sentiment
    _advance(feedback, "classified")


async def on_ticket_event(session: AsyncSession, event: TicketCreatedV1 | TicketResolvedV1, _: object) -> None:
    if event.ticket.feedback_id is None:
        return
    feedback = await session.get(Feedback, str(event.ticket.feedback_id))
    if feedback is None:
        return
    if feedback.ticket_id is None:
        feedback.ticket_id = str(event.ticket.ticket_id)
    _advance(feedback, "resolved" if isinstance(event, TicketResolvedV1) else "ticket_opened")
