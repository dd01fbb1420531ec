"""Keeping each feedback's visible status up to date from classify and ticketing events (called by the
handlers, in the consumer's transaction).

Each event is one UPDATE statement, not a load and a write-back of the row: two of them reach ingest for
every item, and the status only moves forward (received → classified → ticket_opened → resolved), which
the statement itself decides."""

from datetime import UTC, datetime

from sqlalchemy import ColumnElement, case, func, update
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events import FeedbackClassifiedV1, TicketCreatedV1, TicketFeedbackAttachedV1, TicketResolvedV1
from ingest.models import STATUS_ORDER, Feedback

status_rank = case({status: rank for rank, status in enumerate(STATUS_ORDER)}, value=Feedback.status, else_=-1)


def _advanced_to(status: str) -> ColumnElement[str]:
    """The status column moved forward to `status`, never back."""
    return case((status_rank < STATUS_ORDER.index(status), status), else_=Feedback.status)


async def _update(session: AsyncSession, where: ColumnElement[bool], **values: object) -> None:
    await session.execute(update(Feedback).where(where).values(updated_at=datetime.now(UTC), **values)
                          .execution_options(synchronize_session=False))


async def record_classification(session: AsyncSession, event: FeedbackClassifiedV1) -> None:
    # No row (another ingest deployment's feedback, or already purged): nothing to update.
    await _update(session, Feedback.id == str(event.feedback_id), category=event.classification.category,
                  sentiment=event.classification.sentiment, status=_advanced_to("classified"))


async def follow_ticket(session: AsyncSession,
                        event: TicketCreatedV1 | TicketFeedbackAttachedV1 | TicketResolvedV1) -> None:
    ticket_id = str(event.ticket.ticket_id)
    # Attached feedback is named by the event itself; the others by the ticket they opened.
    feedback_id = event.feedback_id if isinstance(event, TicketFeedbackAttachedV1) else event.ticket.feedback_id
    if isinstance(event, TicketResolvedV1):
        if feedback_id:
            await _update(session, Feedback.id == str(feedback_id),
                          ticket_id=func.coalesce(Feedback.ticket_id, ticket_id))
        # Every item on the ticket is resolved with it, including feedback attached to it later.
        await _update(session, Feedback.ticket_id == ticket_id, status=_advanced_to("resolved"))
    elif feedback_id:
        await _update(session, Feedback.id == str(feedback_id),
                      ticket_id=func.coalesce(Feedback.ticket_id, ticket_id), status=_advanced_to("ticket_opened"))
