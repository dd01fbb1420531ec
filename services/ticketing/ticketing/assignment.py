"""Assigning tickets to agents: the most suitable available agent with spare capacity.

Suitability: agents of the ticket's team who are online and below their capacity; among them the
most skills matching the ticket's category (any taxonomy level) or tags, then speaking the ticket's
language, then the fewest open tickets (load), then whoever was assigned longest ago (round-robin
among equals). On PostgreSQL the candidate agents are locked (in id order, so replicas never
deadlock) for the rest of the transaction, so two replicas cannot both fill an agent's last slot.
"""

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events import TicketAssignedV1
from ticketing.audit import audit
from ticketing.models import Agent, Ticket, outbox
from ticketing.snapshots import snapshot

ACTIVE_STATUSES = ("new", "open", "pending")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


async def agent_loads(session: AsyncSession, agent_ids: list[str]) -> dict[str, int]:
    if not agent_ids:
        return {}
    rows = await session.execute(
        select(Ticket.assignee, func.count()).where(Ticket.assignee.in_(agent_ids),
                                                    Ticket.status.in_(ACTIVE_STATUSES))
        .group_by(Ticket.assignee))
    loads = {agent_id: 0 for agent_id in agent_ids}
    loads.update({assignee: count for assignee, count in rows.all()})
    return loads


def skill_matches(agent: Agent, ticket: Ticket) -> int:
    category = ticket.category.lower()
    tags = {t.lower() for t in ticket.tags or []}
    return sum(1 for skill in agent.skills
               if category == skill.lower() or category.startswith(skill.lower() + "/") or skill.lower() in tags)


async def pick_agent(session: AsyncSession, ticket: Ticket, exclude: set[str] | None = None) -> Agent | None:
    query = select(Agent).where(Agent.status == "online").order_by(Agent.id)
    if session.bind.dialect.name == "postgresql":
        query = query.with_for_update()
    agents = [a for a in await session.scalars(query)
              if ticket.team in a.teams and a.id not in (exclude or set())]
    loads = await agent_loads(session, [a.id for a in agents])
    available = [a for a in agents if loads[a.id] < a.capacity]
    if not available:
        return None
    language = (ticket.language or "").lower()

    def rank(agent: Agent) -> tuple[int, int, int, datetime, str]:
        speaks = 1 if language and language in {lang.lower() for lang in agent.languages} else 0
        return (-skill_matches(agent, ticket), -speaks, loads[agent.id], agent.last_assigned_at or EPOCH, agent.id)

    return min(available, key=rank)


def assign(session: AsyncSession, ticket: Ticket, agent: Agent | None, actor: str, now: datetime,
           reason: str, team_lead: str | None = None) -> None:
    """Set (or clear) the assignee, audit it and announce `ticket.assigned.v1`."""
    previous = ticket.assignee
    new = agent.id if agent else None
    if previous == new:
        return
    ticket.assignee = new
    ticket.updated_at = now
    if agent is not None:
        agent.last_assigned_at = now
        if ticket.status == "new":
            ticket.status = "open"
    audit(session, ticket.id, actor, "assigned" if agent else "unassigned", now,
          assignee=new, previous=previous, reason=reason)
    if agent is not None:
        outbox.add(session, TicketAssignedV1(ticket=snapshot(ticket, team_lead), assignee=agent.id,
                                             previous_assignee=previous, reason=reason))


async def auto_assign(session: AsyncSession, ticket: Ticket, now: datetime, team_lead: str | None = None,
                      exclude: set[str] | None = None, actor: str = "assignment") -> Agent | None:
    agent = await pick_agent(session, ticket, exclude)
    if agent is not None:
        assign(session, ticket, agent, actor, now, "most suitable available agent", team_lead)
    return agent


async def reassign_tickets_of(session: AsyncSession, agent: Agent, now: datetime,
                              lead_of: Callable[[str], str | None]) -> int:
    """The agent went offline: hand their active tickets to others (or back to the team queue)."""
    tickets = list(await session.scalars(select(Ticket).where(Ticket.assignee == agent.id,
                                                              Ticket.status.in_(ACTIVE_STATUSES))
                                         .order_by(Ticket.priority, Ticket.created_at)))
    for ticket in tickets:
        other = await pick_agent(session, ticket, exclude={agent.id})
        assign(session, ticket, other, "assignment", now, f"{agent.id} went {agent.status}", lead_of(ticket.team))
    return len(tickets)


async def assign_waiting_tickets(session: AsyncSession, agent: Agent, now: datetime,
                                 lead_of: Callable[[str], str | None]) -> int:
    """The agent is available (again) or has more capacity: give them unassigned tickets of their teams,
    highest priority and oldest first, while they have room and are the best choice."""
    waiting = list(await session.scalars(select(Ticket).where(Ticket.assignee.is_(None),
                                                              Ticket.status.in_(ACTIVE_STATUSES),
                                                              Ticket.team.in_(agent.teams))
                                         .order_by(Ticket.priority, Ticket.created_at).limit(200)))
    assigned = 0
    for ticket in waiting:
        chosen = await pick_agent(session, ticket)
        if chosen is None:
            break
        assign(session, ticket, chosen, "assignment", now, "waiting for an available agent", lead_of(ticket.team))
        assigned += 1
    return assigned
