"""Data rights, ticketing's part: the customer's tickets lose their texts, personal fields and comments
(the tickets stay, anonymised, for the SLA history and the reports); feedback of theirs attached to
other tickets loses its text; CSAT comments and audit details of their tickets are cleared."""

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.erasure import ERASED, chunks, pseudonym
from closedloop.events import CustomerErasureRequestedV1
from ticketing.models import AttachedFeedback, AuditEntry, Comment, CsatResponse, Ticket


async def erase_customer(session: AsyncSession, event: CustomerErasureRequestedV1) -> dict[str, int]:
    condition = Ticket.customer_id == event.customer_id
    if event.feedback_ids:
        condition = or_(condition, *(Ticket.feedback_id.in_(g) for g in chunks(event.feedback_ids)))
    ticket_ids = list((await session.scalars(select(Ticket.id).where(condition))).all())
    erased = {"tickets": 0, "ticket_comments": 0, "ticket_feedback": 0, "csat_responses": 0, "ticket_audit": 0}
    for group in chunks(ticket_ids):
        erased["tickets"] += (await session.execute(update(Ticket).where(Ticket.id.in_(group)).values(
            title=ERASED, description=ERASED, customer_id=pseudonym(event.erasure_id), customer_email=None,
            customer_name=None, thread_id=None, source_message_id=None))).rowcount or 0
        # Replies and notes, the customer's answers by e-mail or chat included.
        erased["ticket_comments"] += (await session.execute(
            update(Comment).where(Comment.ticket_id.in_(group)).values(body=ERASED, delivery_error=None))
        ).rowcount or 0
        erased["csat_responses"] += (await session.execute(
            update(CsatResponse).where(CsatResponse.ticket_id.in_(group)).values(comment=None))).rowcount or 0
        erased["ticket_audit"] += (await session.execute(
            update(AuditEntry).where(AuditEntry.ticket_id.in_(group)).values(details={"erased": True}))
        ).rowcount or 0
        erased["ticket_feedback"] += (await session.execute(
            update(AttachedFeedback).where(AttachedFeedback.ticket_id.in_(group)).values(text=ERASED))
        ).rowcount or 0
    for group in chunks(event.feedback_ids):
        erased["ticket_feedback"] += (await session.execute(
            update(AttachedFeedback).where(AttachedFeedback.feedback_id.in_(group), AttachedFeedback.text != ERASED)
            .values(text=ERASED))).rowcount or 0
    return erased
