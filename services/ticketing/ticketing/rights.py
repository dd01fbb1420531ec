"""Data rights, ticketing's part: the customer's tickets lose their texts, personal fields and comments
(the tickets stay, anonymised, for the SLA history and the reports); feedback of theirs attached to
other tickets loses its text; CSAT comments and audit details of their tickets are cleared."""

from typing import Any, cast

from sqlalchemy import CursorResult, Update, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.erasure import ERASED, chunks, pseudonym
from closedloop.events import CustomerErasureRequestedV1
from ticketing.models import AttachedFeedback, AuditEntry, Comment, CsatResponse, Ticket


async def _count(session: AsyncSession, statement: Update) -> int:
    """The rows an UPDATE changed."""
    return cast(CursorResult[Any], await session.execute(statement)).rowcount or 0


async def erase_customer(session: AsyncSession, event: CustomerErasureRequestedV1) -> dict[str, int]:
    condition = Ticket.customer_id == event.customer_id
    if event.feedback_ids:
        condition = or_(condition, *(Ticket.feedback_id.in_(g) for g in chunks(event.feedback_ids)))
    ticket_ids = list((await session.scalars(select(Ticket.id).where(condition))).all())
    erased = {"tickets": 0, "ticket_comments": 0, "ticket_feedback": 0, "csat_responses": 0, "ticket_audit": 0}
    for group in chunks(ticket_ids):
        erased["tickets"] += await _count(session, update(Ticket).where(Ticket.id.in_(group)).values(
            title=ERASED, description=ERASED, customer_id=pseudonym(event.erasure_id), customer_email=None,
            customer_name=None, thread_id=None, source_message_id=None))
        # Replies and notes, the customer's answers by e-mail or chat included.
        erased["ticket_comments"] += await _count(
            session, update(Comment).where(Comment.ticket_id.in_(group)).values(body=ERASED, delivery_error=None))
        erased["csat_responses"] += await _count(
            session, update(CsatResponse).where(CsatResponse.ticket_id.in_(group)).values(comment=None))
        erased["ticket_audit"] += await _count(
            session, update(AuditEntry).where(AuditEntry.ticket_id.in_(group)).values(details={"erased": True}))
        erased["ticket_feedback"] += await _count(
            session, update(AttachedFeedback).where(AttachedFeedback.ticket_id.in_(group)).values(text=ERASED))
    for group in chunks(event.feedback_ids):
        erased["ticket_feedback"] += await _count(session, update(AttachedFeedback).where(
            AttachedFeedback.feedback_id.in_(group), AttachedFeedback.text != ERASED).values(text=ERASED))
    return erased
