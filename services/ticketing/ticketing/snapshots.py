"""The ticket as events describe it."""

from uuid import UUID

from closedloop.events import CustomerRef, TicketSnapshot
from ticketing import links
from ticketing.models import Ticket
from ticketing.routing import PRIORITIES


def snapshot(ticket: Ticket, team_lead: str | None = None) -> TicketSnapshot:
    return TicketSnapshot(
        ticket_id=UUID(ticket.id), feedback_id=None if ticket.feedback_id is None else UUID(ticket.feedback_id),
        title=ticket.title, status=ticket.status,
        priority=ticket.priority, team=ticket.team, category=ticket.category, sentiment=ticket.sentiment,
        customer=CustomerRef(id=ticket.customer_id, tier=ticket.customer_tier,
                             email=ticket.customer_email, name=ticket.customer_name),
        assignee=ticket.assignee, public_token=ticket.public_token, team_lead=team_lead,
        first_response_due_at=ticket.first_response_due_at, resolution_due_at=ticket.resolution_due_at,
        tags=list(ticket.tags or []), channel=ticket.channel, language=ticket.language,
        reference=links.reference(ticket.id), thread_id=ticket.thread_id,
        source_message_id=ticket.source_message_id,
        status_url=links.status_url(ticket.public_token), csat_url=links.csat_url(ticket.public_token),
        incident_id=ticket.incident_id,
    )


def raise_priority(ticket: Ticket) -> bool:
    """One level up (P0 stays P0); True if it changed."""
    index = PRIORITIES.index(ticket.priority)
    if index == 0:
        return False
    ticket.priority = PRIORITIES[index - 1]
    return True
