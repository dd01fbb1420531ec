"""Recognising a customer's answer to one of our messages, so it continues its ticket instead of
opening a new one (see docs/adr/0010-closing-the-loop-with-the-customer.md).

An e-mail answers a ticket when, in this order, its In-Reply-To or References name one of our
messages (`<cl.<delivery>.<ticket id>@…>`, see closedloop.mailthread) or the customer's own earlier
message of a ticket, its To/Cc is the ticket address (`support+<ticket id>@…`), or its subject carries
the ticket tag `[#<reference>]`. A chat or app message answers a ticket when its thread_id is the
thread of earlier feedback that has a ticket. None of these marks is a secret, so the ticket must also
be the sender's: one opened from feedback of the same customer id or e-mail address. Ingest learns
which feedback opened which ticket from ticketing's events (`Feedback.ticket_id`)."""

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop import mailthread
from ingest.models import Feedback
from ingest.schemas.feedback import FeedbackIn

MatchedBy = Literal["in_reply_to", "references", "to_address", "subject", "thread_id"]


@dataclass(frozen=True)
class ReplyTo:
    ticket_id: str
    matched_by: MatchedBy
    in_reply_to: str | None
    references: list[str]


def _ids(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)] if value else []


async def _customers_ticket(session: AsyncSession, body: FeedbackIn, *conditions: ColumnElement[bool]) -> str | None:
    """The ticket of the sender's earlier feedback matching `conditions`, if there is one."""
    owner = [Feedback.customer_id == body.customer.id]
    if body.customer.email:
        owner.append(func.lower(Feedback.customer_email) == body.customer.email.lower())
    return await session.scalar(select(Feedback.ticket_id).where(
        Feedback.ticket_id.is_not(None), or_(*owner), *conditions).order_by(Feedback.received_at.desc()).limit(1))


async def _by_message_id(session: AsyncSession, body: FeedbackIn, message_id: str) -> str | None:
    ticket_id = mailthread.ticket_of_message_id(message_id)
    if ticket_id is not None:
        return await _customers_ticket(session, body, Feedback.ticket_id == ticket_id)
    # The customer's own earlier e-mail (e.g. a follow-up to the message that opened the ticket).
    return await _customers_ticket(session, body, Feedback.channel == "email",
                                   or_(Feedback.external_id == message_id, Feedback.thread_id == message_id))


async def find_ticket(session: AsyncSession, body: FeedbackIn) -> ReplyTo | None:
    metadata = body.metadata or {}
    if body.channel == "email":
        in_reply_to = _ids(metadata.get("in_reply_to"))
        references = _ids(metadata.get("references"))
        parent = in_reply_to[0] if in_reply_to else None
        for kind, candidates in (("in_reply_to", in_reply_to), ("references", list(reversed(references)))):
            for message_id in candidates:
                ticket_id = await _by_message_id(session, body, message_id)
                if ticket_id:
                    return ReplyTo(ticket_id, kind, parent, references)  # type: ignore[arg-type]
        for address in [*_ids(metadata.get("to")), *_ids(metadata.get("cc"))]:
            named = mailthread.ticket_of_address(address)
            if named:
                ticket_id = await _customers_ticket(session, body, Feedback.ticket_id == named)
                if ticket_id:
                    return ReplyTo(ticket_id, "to_address", parent, references)
        reference = mailthread.reference_of_subject(body.subject)
        if reference:
            ticket_id = await _customers_ticket(session, body, Feedback.ticket_id.startswith(reference.lower()))
            if ticket_id:
                return ReplyTo(ticket_id, "subject", parent, references)
        return None
    if body.thread_id:
        ticket_id = await _customers_ticket(session, body, Feedback.channel == body.channel,
                                            Feedback.thread_id == body.thread_id)
        if ticket_id:
            return ReplyTo(ticket_id, "thread_id", None, [])
    return None
