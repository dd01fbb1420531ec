"""E-mail threads with customers: each customer e-mail about a ticket answers the previous message of
the ticket's conversation, so mail clients show one conversation, and carries the marks that bring
the customer's answer back to the ticket (closedloop.mailthread). Headers are decided when the
delivery is planned and stored in its payload: a retry or a replay sends the very same message."""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop import mailthread
from closedloop.events import Event, TicketSnapshot
from notify.models import ThreadMessage
from notify.settings import NotifySettings

# References keeps the thread's first message and the latest ones (RFC 5322 allows trimming the middle).
MAX_REFERENCES = 12


async def record(session: AsyncSession, ticket_id: str, message_id: str, direction: str, delivery_id: str | None,
                 now: datetime) -> None:
    exists = await session.scalar(select(ThreadMessage.id).where(ThreadMessage.ticket_id == ticket_id,
                                                                 ThreadMessage.message_id == message_id))
    if exists is not None:
        return
    try:
        async with session.begin_nested():
            session.add(ThreadMessage(ticket_id=ticket_id, message_id=message_id[:500], direction=direction,
                                      delivery_id=delivery_id, created_at=now))
    except IntegrityError:
        pass  # recorded by a concurrent handler


async def thread_of(session: AsyncSession, ticket: TicketSnapshot) -> list[str]:
    """The conversation's Message-IDs, oldest first: the customer's first e-mail, then ours and theirs."""
    rows = list(await session.scalars(select(ThreadMessage.message_id).where(
        ThreadMessage.ticket_id == str(ticket.ticket_id)).order_by(ThreadMessage.created_at, ThreadMessage.id)))
    first = [ticket.source_message_id] if ticket.source_message_id else []
    return list(dict.fromkeys([*first, *rows]))


async def customer_email(session: AsyncSession, event: Event, subject: str, delivery_id: str,
                         settings: NotifySettings, now: datetime) -> tuple[str, dict[str, str]]:
    ticket: TicketSnapshot = event.ticket  # type: ignore[attr-defined]
    ticket_id = str(ticket.ticket_id)
    reference = ticket.reference or ticket_id.split("-")[0].upper()
    tag = mailthread.subject_tag(reference)
    if tag not in subject:
        subject = f"{subject} {tag}"
    domain = mailthread.domain_of(settings.reply_address)
    headers = {"Message-ID": mailthread.message_id(delivery_id, ticket_id, domain),
               "Reply-To": mailthread.reply_address(settings.reply_address, ticket_id)}
    thread = await thread_of(session, ticket)
    if thread:
        headers["In-Reply-To"] = thread[-1]
        kept = thread if len(thread) <= MAX_REFERENCES else [thread[0], *thread[-(MAX_REFERENCES - 1):]]
        headers["References"] = " ".join(kept)
    return subject, headers
