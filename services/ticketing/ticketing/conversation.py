"""The conversation with the customer, as events bring it in: replies that came back by e-mail or chat
(recognised by ingest), what notify says became of our messages, and CSAT from surveys."""

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events import (
    AlertRaisedV1,
    FeedbackCsatAnsweredV1,
    FeedbackReplyReceivedV1,
    NotificationDeliveredV1,
    NotificationFailedV1,
    NotificationSuppressedV1,
    TicketCsatReceivedV1,
    TicketRepliedV1,
)
from ticketing.audit import audit
from ticketing.clock import Clock
from ticketing.models import AttachedFeedback, Comment, CsatResponse, Incident, Ticket, outbox
from ticketing.routing import RoutingTable
from ticketing.snapshots import snapshot
from ticketing.tickets import TicketOptions, add_comment

MERGE_HOPS = 10


async def surviving_ticket(session: AsyncSession, ticket_id: str) -> Ticket | None:
    """The ticket, or the one it was merged into."""
    ticket = await session.get(Ticket, ticket_id)
    for _ in range(MERGE_HOPS):
        if ticket is None or ticket.merged_into is None:
            break
        ticket = await session.get(Ticket, ticket.merged_into)
    return ticket


async def on_reply_received(session: AsyncSession, event: FeedbackReplyReceivedV1, table: RoutingTable,
                            clock: Clock, options: TicketOptions) -> Comment | None:
    """The customer's answer becomes a public customer comment on the ticket (reopening it), never a new ticket."""
    ticket = await surviving_ticket(session, str(event.ticket_id))
    if ticket is None:
        return None  # ingest only sends replies to tickets it saw opened; nothing to join
    if await session.get(AttachedFeedback, str(event.feedback_id)) is not None:
        return None
    now = clock.now()
    session.add(AttachedFeedback(feedback_id=str(event.feedback_id), ticket_id=ticket.id, text=event.text,
                                 reason=f"customer reply ({event.matched_by})", attached_at=now))
    return await add_comment(session, ticket, author=ticket.customer_id, author_type="customer", public=True,
                             body=event.text, now=now, table=table, options=options, channel=event.channel,
                             feedback_id=str(event.feedback_id), message_id=event.message_id)


def is_reply_outcome(event: NotificationDeliveredV1 | NotificationFailedV1 | NotificationSuppressedV1) -> bool:
    """Whether a notification outcome is about one of our replies to a customer: the only ones kept."""
    return event.to_customer and event.event_type == TicketRepliedV1.nats_subject


async def on_notification_outcome(session: AsyncSession,
                                  event: NotificationDeliveredV1 | NotificationFailedV1 | NotificationSuppressedV1,
                                  clock: Clock) -> None:
    """Show on the reply whether it reached the customer. Delivered wins over a failed copy on another
    route; a dead-lettered delivery that is replayed and then succeeds turns the reply delivered."""
    if not is_reply_outcome(event):
        return
    comment = await session.scalar(select(Comment).where(Comment.event_id == str(event.source_event_id)))
    if comment is None:
        return
    if isinstance(event, NotificationDeliveredV1):
        comment.delivery_status, comment.delivery_error = "delivered", None
        return
    if comment.delivery_status == "delivered":
        return
    error = event.error if isinstance(event, NotificationFailedV1) else event.reason
    comment.delivery_status, comment.delivery_error = "undelivered", f"{event.channel}: {error}"[:2000]
    audit(session, comment.ticket_id, "notify", "reply_undelivered", clock.now(), comment_id=comment.id,
          channel=event.channel, error=error[:500])


async def record_csat(session: AsyncSession, ticket: Ticket, score: int, comment: str | None, source: str,
                      now: datetime, table: RoutingTable) -> CsatResponse:
    """The ticket's rating (a later one replaces it), audited and announced as `ticket.csat_received.v1`."""
    row = await session.get(CsatResponse, ticket.id)
    replaced = row.score if row is not None else None
    if row is None:
        row = CsatResponse(ticket_id=ticket.id, score=score, comment=comment, created_at=now, source=source)
        session.add(row)
    else:
        row.score, row.comment, row.created_at, row.source = score, comment, now, source
    audit(session, ticket.id, ticket.customer_id, "csat", now, score=score, source=source)
    outbox.add(session, TicketCsatReceivedV1(ticket=snapshot(ticket, table.lead_of(ticket.team)), score=score,
                                             comment=comment, source=source,  # type: ignore[arg-type]
                                             replaced_score=replaced, occurred_at=now))
    return row


async def find_ticket(session: AsyncSession, named: str) -> Ticket | None:
    """A ticket named by its id, its public token or its reference (the short number customers see)."""
    named = named.strip()
    ticket = await session.get(Ticket, named) or await session.scalar(
        select(Ticket).where(Ticket.public_token == named))
    if ticket is None and 6 <= len(named) <= 8 and all(c in "0123456789abcdefABCDEF" for c in named):
        rows = list(await session.scalars(select(Ticket).where(func.lower(Ticket.id).startswith(named.lower()))
                                          .limit(2)))
        ticket = rows[0] if len(rows) == 1 else None
    return await surviving_ticket(session, ticket.id) if ticket is not None else None


async def on_csat_answered(session: AsyncSession, event: FeedbackCsatAnsweredV1, table: RoutingTable,
                           clock: Clock) -> None:
    ticket = await find_ticket(session, event.ticket)
    if ticket is None or (ticket.customer_id != event.customer.id and (
            not ticket.customer_email or ticket.customer_email.lower() != (event.customer.email or "").lower())):
        return  # an unknown ticket, or somebody else's: the answer stays feedback only
    await record_csat(session, ticket, event.score, event.comment, "survey", clock.now(), table)


async def on_alert_raised(session: AsyncSession, event: AlertRaisedV1, clock: Clock) -> None:
    """A spike alert becomes a proposed incident; an operator confirms it (with the public message) or not."""
    now = clock.now()
    session.add(Incident(id=str(event.event_id), title=f"{event.kind}: {event.message}"[:200],
                         description=event.message, public_message={}, categories=[], keywords=[],
                         status="proposed", source="alert", alert=event.model_dump(mode="json"), confirmed_by=None,
                         created_at=now, updated_at=now))
