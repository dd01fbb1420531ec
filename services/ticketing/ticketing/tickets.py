"""Opening tickets from classified feedback."""

import secrets
from datetime import UTC, datetime
from uuid import uuid4

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events import CustomerRef, FeedbackClassifiedV1, TicketCreatedV1, TicketSnapshot
from ticketing.models import Ticket, outbox
from ticketing.routing import RoutingInput, RoutingTable, route_ticket

TITLE_CHARS = 120


def make_title(subject: str | None, text: str) -> str:
    source = subject or text.split("\n", 1)[0]
    return source if len(source) <= TITLE_CHARS else source[: TITLE_CHARS - 1].rstrip() + "…"


def snapshot(ticket: Ticket) -> TicketSnapshot:
    return TicketSnapshot(
        ticket_id=ticket.id, feedback_id=ticket.feedback_id, title=ticket.title, status=ticket.status,
        priority=ticket.priority, team=ticket.team, category=ticket.category, sentiment=ticket.sentiment,
        customer=CustomerRef(id=ticket.customer_id, tier=ticket.customer_tier,
                             email=ticket.customer_email, name=ticket.customer_name),
        assignee=ticket.assignee,
    )


async def open_ticket(session: AsyncSession, event: FeedbackClassifiedV1, table: RoutingTable) -> Ticket:
    """Create the ticket for one classified feedback item and stage `ticket.created.v1`.
    Runs in the consumer's transaction; a second call for the same feedback returns the first ticket."""
    existing = await session.scalar(select(Ticket).where(Ticket.feedback_id == str(event.feedback_id)))
    if existing is not None:
        return existing
    result = event.classification
    decision = route_ticket(table, RoutingInput(
        category=result.category, sentiment=result.sentiment, sentiment_score=result.sentiment_score,
        customer_tier=event.customer.tier,
    ))
    now = datetime.now(UTC)
    ticket = Ticket(
        id=str(uuid4()), feedback_id=str(event.feedback_id), public_token=secrets.token_urlsafe(24),
        title=make_title(event.subject, event.text), description=event.text, channel=event.channel,
        customer_id=event.customer.id, customer_tier=event.customer.tier,
        customer_email=event.customer.email, customer_name=event.customer.name,
        category=result.category, category_label=result.category_label,
        category_confidence=result.confidence, sentiment=result.sentiment,
        sentiment_score=result.sentiment_score, priority=decision.priority, team=decision.team,
        routing_reason="; ".join(decision.reasons), status="new", assignee=None,
        created_at=now, updated_at=now,
    )
    session.add(ticket)
    outbox.add(session, TicketCreatedV1(ticket=snapshot(ticket)))
    return ticket
