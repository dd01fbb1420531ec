"""Tickets: opening them from classified feedback, and their lifecycle.

new → open (assigned or answered) → pending (waiting on the customer; SLA clocks paused) → resolved
→ closed; resolved or closed tickets can be reopened. Every function here runs in the caller's
transaction and stages its events in the outbox of that same transaction; every change is audited.
"""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, cast
from uuid import uuid4

from sqlalchemy import case, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.errors import ProblemError, conflict, field_problem
from closedloop.events import (
    FeedbackClassifiedV1,
    Priority,
    TicketCreatedV1,
    TicketCustomerRepliedV1,
    TicketFeedbackAttachedV1,
    TicketRecategorizedV1,
    TicketRepliedV1,
    TicketResolvedV1,
)
from ticketing import autoreply, links
from ticketing.assignment import ACTIVE_STATUSES, assign, auto_assign
from ticketing.audit import audit
from ticketing.clock import Clock, SystemClock
from ticketing.models import Agent, AttachedFeedback, Comment, Ticket, TicketLink, outbox
from ticketing.routing import RoutingTable
from ticketing.routing_rules import route_message
from ticketing.rules import Message
from ticketing.sla import (
    first_clocks,
    pause_clocks,
    restart_resolution_clock,
    resume_clocks,
    select_policy,
    start_clocks,
    stop_clock,
)
from ticketing.snapshots import snapshot

__all__ = ["TITLE_CHARS", "TicketOptions", "make_title", "open_ticket"]

TITLE_CHARS = 120
STATUSES = ("new", "open", "pending", "resolved", "closed")
TRANSITIONS: dict[str, set[str]] = {
    "new": {"open", "pending", "resolved"},
    "open": {"pending", "resolved"},
    "pending": {"open", "resolved"},
    "resolved": {"closed", "open"},
    "closed": {"open"},
}


@dataclass(frozen=True)
class TicketOptions:
    # New feedback of the same customer and category within this window joins their open ticket.
    duplicate_window: timedelta = timedelta(hours=72)
    public_base_url: str = "http://127.0.0.1:8003"
    # classify's duplicate link to another customer's ticket: attach there too (True), or open the
    # customer's own ticket linked to it (False), so every customer keeps a status page and CSAT.
    attach_duplicates_across_customers: bool = False


def make_title(subject: str | None, text: str) -> str:
    source = subject or text.split("\n", 1)[0]
    return source if len(source) <= TITLE_CHARS else source[: TITLE_CHARS - 1].rstrip() + "…"


def message_of(event: FeedbackClassifiedV1) -> Message:
    result = event.classification
    language = result.language
    if language in ("und", ""):  # classify could not tell
        language = None
    return Message(category=result.category, sentiment=result.sentiment, sentiment_score=result.sentiment_score,
                   customer_tier=event.customer.tier, channel=event.channel, language=language,
                   severity=result.severity, text=event.text, subject=event.subject,
                   needs_triage=result.needs_triage)


async def ticket_of_feedback(session: AsyncSession, feedback_id: str) -> Ticket | None:
    # One statement: the ticket this feedback opened, or the one it was attached to.
    attached_to = select(AttachedFeedback.ticket_id).where(AttachedFeedback.feedback_id == feedback_id)
    ticket = await session.scalar(select(Ticket).where(or_(Ticket.feedback_id == feedback_id,
                                                           Ticket.id.in_(attached_to)))
                                  .order_by(case((Ticket.feedback_id == feedback_id, 0), else_=1)).limit(1))
    for _ in range(10):  # follow merges to the surviving ticket
        if ticket is None or ticket.merged_into is None:
            break
        ticket = await session.get(Ticket, ticket.merged_into)
    return ticket


async def _duplicate_target(session: AsyncSession, event: FeedbackClassifiedV1, now: datetime,
                            options: TicketOptions) -> tuple[Ticket | None, str, Ticket | None]:
    """(ticket to attach to, why, ticket to link a new one to)."""
    related = None
    duplicate_of = event.duplicate_of
    if duplicate_of:
        ticket = await ticket_of_feedback(session, str(duplicate_of))
        if ticket is not None and ticket.status in ACTIVE_STATUSES:
            if ticket.customer_id == event.customer.id or options.attach_duplicates_across_customers:
                return ticket, f"duplicate of feedback {duplicate_of}", None
            related = ticket
    ticket = await session.scalar(
        select(Ticket).where(Ticket.customer_id == event.customer.id,
                             Ticket.category == event.classification.category,
                             Ticket.status.in_(ACTIVE_STATUSES), Ticket.merged_into.is_(None),
                             Ticket.created_at >= now - options.duplicate_window)
        .order_by(Ticket.created_at.desc()).limit(1))
    if ticket is not None:
        return ticket, "same customer and category within the duplicate window", None
    return None, "", related


async def open_ticket(session: AsyncSession, event: FeedbackClassifiedV1, table: RoutingTable,
                      clock: Clock | None = None, options: TicketOptions | None = None) -> Ticket:
    """Create the ticket for one classified feedback item and stage `ticket.created.v1` (and
    `ticket.assigned.v1` when an agent is free), or attach the feedback to the customer's open
    ticket on the same problem. A duplicate (per classify) of another customer's ticket gets its own
    ticket, linked to that one, unless `attach_duplicates_across_customers`. Runs in the consumer's
    transaction; a second call for the same feedback returns the first ticket."""
    options = options or TicketOptions()
    now = (clock or SystemClock()).now()
    existing = await ticket_of_feedback(session, str(event.feedback_id))
    if existing is not None:
        return existing
    target, reason, related = await _duplicate_target(session, event, now, options)
    if target is not None:
        await attach_feedback(session, target, event, reason, now, table)
        return target

    message = message_of(event)
    decision = await route_message(session, table, message)
    result = event.classification
    ticket = Ticket(
        id=str(uuid4()), feedback_id=str(event.feedback_id), public_token=secrets.token_urlsafe(24),
        title=make_title(event.subject, event.text), description=event.text, channel=event.channel,
        customer_id=event.customer.id, customer_tier=event.customer.tier,
        customer_email=event.customer.email, customer_name=event.customer.name,
        category=result.category, category_label=result.category_label,
        category_confidence=result.confidence, sentiment=result.sentiment,
        sentiment_score=result.sentiment_score, priority=decision.priority, team=decision.team,
        routing_reason="; ".join(decision.reasons), status="new", assignee=None,
        created_at=now, updated_at=now, language=message.language, severity=decision.score.severity,
        tags=decision.tags, priority_score=decision.score.score,
        rule_id=decision.rule.id if decision.rule else None, sla_breached=False,
        thread_id=event.thread_id, source_message_id=_source_message_id(event),
        emotions=list(result.emotions or []),
    )
    rule = await autoreply.decide(session, ticket, result.sentiment, now)
    if rule == "praise_no_ticket":
        await _thank_without_ticket(session, ticket, now, table)
        return ticket
    clocks = first_clocks(ticket, await select_policy(session, ticket.priority, ticket.customer_tier), now)
    session.add(ticket)
    await session.flush()  # visible to the next message of the same consumer batch (duplicates)
    session.add_all(clocks)
    audit(session, ticket.id, "routing", "created", now, team=ticket.team, priority=ticket.priority,
          score=ticket.priority_score, rule=ticket.rule_id, reasons=decision.reasons)
    if related is not None:  # the same problem reported by another customer
        await link_tickets(session, ticket, related, "routing", now)
    lead = table.lead_of(ticket.team)
    outbox.add(session, TicketCreatedV1(ticket=snapshot(ticket, lead)))
    agent = await session.get(Agent, decision.assignee) if decision.assignee else None
    if agent is not None:
        assign(session, ticket, agent, "routing", now, f"rule {decision.rule.name if decision.rule else ''!r}", lead)
    elif not decision.triage:
        await auto_assign(session, ticket, now, lead)
    if rule is not None:
        async def reply(body: str, rule: str, macro_id: str | None = None) -> None:
            await add_comment(session, ticket, author="auto-reply", author_type="system", public=True, body=body,
                              now=now, table=table, options=options, kind="auto_reply", macro_id=macro_id,
                              auto_reply_rule=rule)
        await autoreply.apply(session, ticket, rule, now, reply)
    return ticket


async def _thank_without_ticket(session: AsyncSession, ticket: Ticket, now: datetime, table: RoutingTable) -> None:
    """Praise with auto-reply mode "no_ticket": the thank-you goes out, no ticket is stored; the audit log
    keeps the decision under the id the ticket would have had."""
    text, macro_id = await autoreply.thank_you(session, ticket, now)
    ticket.status = "closed"
    audit(session, ticket.id, "auto-reply", "auto_reply_without_ticket", now, feedback_id=ticket.feedback_id,
          rule="praise", macro_id=macro_id)
    view = snapshot(ticket, table.lead_of(ticket.team)).model_copy(update={"status_url": None, "csat_url": None})
    outbox.add(session, TicketRepliedV1(ticket=view, comment_id=0, author="Support team", author_type="system",
                                        text=text, language=ticket.language, channel=ticket.channel,
                                        kind="auto_reply", macro_id=macro_id, auto_reply_rule="praise",
                                        first_response=False, occurred_at=now))


def _source_message_id(event: FeedbackClassifiedV1) -> str | None:
    """The customer's own e-mail Message-ID: our first answer is threaded to it."""
    source = event.source_id
    return source if event.channel == "email" and source and source.startswith("<") else None


async def attach_feedback(session: AsyncSession, ticket: Ticket, event: FeedbackClassifiedV1, reason: str,
                          now: datetime, table: RoutingTable) -> None:
    session.add(AttachedFeedback(feedback_id=str(event.feedback_id), ticket_id=ticket.id, text=event.text,
                                 reason=reason, attached_at=now))
    audit(session, ticket.id, "routing", "feedback_attached", now, feedback_id=str(event.feedback_id),
          reason=reason)
    await add_comment(session, ticket, author=event.customer.id, author_type="customer", public=True,
                      body=event.text, now=now, table=table, announce=False)
    # Ingest shows this feedback's status from it; partners subscribed to ticket.* see it too.
    outbox.add(session, TicketFeedbackAttachedV1(ticket=snapshot(ticket, table.lead_of(ticket.team)),
                                                 feedback_id=event.feedback_id, reason=reason))
    await session.flush()


def _conflict(detail: str, field: str) -> ProblemError:
    return conflict(detail, slug="invalid-transition", field=field)


async def change_status(session: AsyncSession, ticket: Ticket, status: str, actor: str, now: datetime,
                        table: RoutingTable, options: TicketOptions) -> None:
    current = ticket.status
    if status == current:
        return
    if ticket.merged_into is not None:
        raise _conflict(f"ticket was merged into {ticket.merged_into}", "body.status")
    if status not in TRANSITIONS.get(current, set()):
        raise _conflict(f"a {current} ticket cannot become {status}", "body.status")
    ticket.status = status
    ticket.updated_at = now
    action = "reopened" if current in ("resolved", "closed") and status == "open" else "status_changed"
    audit(session, ticket.id, actor, action, now, status=[current, status])
    if status == "pending":
        await pause_clocks(session, ticket, now)
    elif status == "open" and current == "pending":
        await resume_clocks(session, ticket, now)
    elif status == "open":  # reopened
        ticket.resolved_at = None
        ticket.closed_at = None
        await restart_resolution_clock(session, ticket, now)
        await resume_clocks(session, ticket, now)
    elif status == "resolved":
        ticket.resolved_at = now
        await stop_clock(session, ticket, "first_response", now)
        await stop_clock(session, ticket, "resolution", now)
        outbox.add(session, TicketResolvedV1(ticket=snapshot(ticket, table.lead_of(ticket.team)), resolved_at=now,
                                             csat_url=links.csat_url(ticket.public_token),
                                             status_url=links.status_url(ticket.public_token)))
    elif status == "closed":
        ticket.closed_at = now


async def add_comment(session: AsyncSession, ticket: Ticket, *, author: str, author_type: str, public: bool,
                      body: str, now: datetime, table: RoutingTable,
                      options: TicketOptions | None = None, channel: str | None = None, kind: str | None = None,
                      macro_id: str | None = None, feedback_id: str | None = None, message_id: str | None = None,
                      announce: bool = True, auto_reply_rule: str | None = None) -> Comment:
    """A public reply or an internal note. A public agent or system message is announced as
    `ticket.replied.v1` (notify delivers it to the customer) and the first one is the first response:
    it was accepted for delivery the moment this transaction commits (an auto-reply is announced too, but
    is not a person's first response). Internal notes never leave
    ticketing. A customer's reply resumes a pending ticket and reopens a resolved or closed one, and is
    announced as `ticket.customer_replied.v1` (unless `announce` is off: feedback attached as a duplicate)."""
    options = options or TicketOptions()
    outgoing = public and author_type in ("agent", "system")
    comment = Comment(ticket_id=ticket.id, author=author, author_type=author_type, public=public, body=body,
                      created_at=now, kind=(kind or "reply") if outgoing else None,
                      channel=channel or (ticket.channel if outgoing else None),
                      delivery_status="pending" if outgoing else None, macro_id=macro_id, feedback_id=feedback_id,
                      message_id=message_id)
    session.add(comment)
    ticket.updated_at = now
    audit(session, ticket.id, author, "public_reply" if public else "internal_note", now, author_type=author_type,
          kind=comment.kind, macro_id=macro_id, rule=auto_reply_rule)
    first_response = False
    # Only a person's reply is the first response: an auto-reply answers, but does not stop the clock.
    if outgoing and author_type == "agent" and ticket.first_responded_at is None:
        first_response = True
        ticket.first_responded_at = now
        await stop_clock(session, ticket, "first_response", now)
        if ticket.status == "new":
            await change_status(session, ticket, "open", author, now, table, options)
    reopened = False
    if author_type == "customer" and ticket.status in ("pending", "resolved", "closed") and (
            ticket.status != "closed" or feedback_id is not None):
        reopened = True
        await change_status(session, ticket, "open", author, now, table, options)
    await session.flush()  # the comment id goes into the event
    lead = table.lead_of(ticket.team)
    if outgoing:
        event = TicketRepliedV1(
            ticket=snapshot(ticket, lead), comment_id=comment.id, author=await display_name(session, author,
                                                                                            author_type),
            author_type=cast(Literal["agent", "system"], author_type),  # outgoing: an agent or the system
            text=body, language=ticket.language, channel=comment.channel or "api",
            kind=comment.kind, macro_id=macro_id, auto_reply_rule=auto_reply_rule,  # type: ignore[arg-type]
            first_response=first_response, occurred_at=now)
        comment.event_id = str(event.event_id)
        outbox.add(session, event)
    elif author_type == "customer" and public and announce:
        outbox.add(session, TicketCustomerRepliedV1(
            ticket=snapshot(ticket, lead), comment_id=comment.id,
            feedback_id=feedback_id, text=body, channel=channel or "web",  # type: ignore[arg-type]
            language=ticket.language, message_id=message_id, reopened=reopened, occurred_at=now))
    return comment


async def display_name(session: AsyncSession, author: str, author_type: str) -> str:
    """What the customer sees as the sender: the agent's name, never an e-mail address."""
    if author_type == "system" or author.startswith("api_key:"):
        return "Support team"
    agent = await session.get(Agent, agent_id_of(author))
    if agent is not None:
        return agent.name
    return "Support team" if "@" in author else agent_id_of(author)


def agent_id_of(author: str) -> str:
    """Comments and the audit log name the authenticated person as `user:<id>`; a person who works
    tickets is the ticketing agent with the same id."""
    return author.removeprefix("user:")


async def override_priority(session: AsyncSession, ticket: Ticket, priority: Priority, actor: str, reason: str | None,
                            now: datetime) -> None:
    previous = ticket.priority
    if priority == previous:
        return
    ticket.priority = priority
    ticket.updated_at = now
    audit(session, ticket.id, actor, "priority_overridden", now, priority=[previous, priority],
          score=ticket.priority_score, reason=reason)
    # New targets for the new priority, counted from when the ticket was opened.
    await start_clocks(session, ticket, await select_policy(session, priority, ticket.customer_tier), now,
                       since=ticket.created_at)


async def recategorize(session: AsyncSession, ticket: Ticket, category: str, label: str | None, actor: str,
                       now: datetime) -> None:
    previous = ticket.category
    if category == previous:
        return
    ticket.category = category
    ticket.category_label = label or category
    ticket.updated_at = now
    audit(session, ticket.id, actor, "recategorized", now, category=[previous, category])
    outbox.add(session, TicketRecategorizedV1(ticket_id=ticket.id, feedback_id=ticket.feedback_id,  # type: ignore[arg-type]
                                              text=ticket.description, previous_category=previous,
                                              category=category, actor=actor))


async def change_team(session: AsyncSession, ticket: Ticket, team: str, actor: str, now: datetime,
                      table: RoutingTable) -> None:
    previous = ticket.team
    if team == previous:
        return
    ticket.team = team
    ticket.updated_at = now
    audit(session, ticket.id, actor, "team_changed", now, team=[previous, team])
    if ticket.assignee is not None:
        agent = await session.get(Agent, ticket.assignee)
        if agent is None or team not in agent.teams:
            assign(session, ticket, None, actor, now, "moved to another team")
    if ticket.assignee is None and ticket.status in ACTIVE_STATUSES:
        await auto_assign(session, ticket, now, table.lead_of(team))


async def merge_tickets(session: AsyncSession, source: Ticket, target: Ticket, actor: str, now: datetime) -> None:
    """`source` is a duplicate of `target`: its feedback and conversation continue on `target`."""
    if source.id == target.id:
        raise _conflict("a ticket cannot be merged into itself", "body.into_ticket_id")
    if source.merged_into or target.merged_into:
        raise _conflict("one of the tickets was already merged", "body.into_ticket_id")
    if target.status == "closed":
        raise _conflict("cannot merge into a closed ticket", "body.into_ticket_id")
    for attached in await session.scalars(select(AttachedFeedback).where(AttachedFeedback.ticket_id == source.id)):
        attached.ticket_id = target.id
    source.merged_into = target.id
    source.status = "closed"
    source.closed_at = now
    source.updated_at = target.updated_at = now
    await stop_clock(session, source, "first_response", now)
    await stop_clock(session, source, "resolution", now)
    session.add(Comment(ticket_id=target.id, author=actor, author_type="system", public=False,
                        body=f"Merged ticket {source.id}: {source.title}\n\n{source.description}", created_at=now))
    audit(session, source.id, actor, "merged", now, into=target.id)
    audit(session, target.id, actor, "merged_from", now, source=source.id)
    await link_tickets(session, source, target, actor, now)


async def link_tickets(session: AsyncSession, ticket: Ticket, other: Ticket, actor: str, now: datetime) -> bool:
    if ticket.id == other.id:
        raise field_problem("body.ticket_id", "same ticket", detail="a ticket cannot be linked to itself")
    if await session.get(TicketLink, (ticket.id, other.id)) is not None:
        return False
    session.add_all([TicketLink(ticket_id=ticket.id, related_id=other.id, created_at=now),
                     TicketLink(ticket_id=other.id, related_id=ticket.id, created_at=now)])
    audit(session, ticket.id, actor, "linked", now, related=other.id)
    audit(session, other.id, actor, "linked", now, related=ticket.id)
    return True
