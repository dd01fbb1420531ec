"""Agents: teams, skills, languages, capacity and availability. Adding an online agent, or bringing one
online (or giving more capacity), picks up tickets waiting in their teams; going offline or away hands
their active tickets to others. Each change is one transaction (`async with session.begin():`)."""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.api import get_or_404
from closedloop.errors import conflict, field_problem
from ticketing.assignment import agent_loads, assign_waiting_tickets, reassign_tickets_of
from ticketing.models import Agent
from ticketing.routing import RoutingTable
from ticketing.schemas.agents import AgentIn, AgentPatchIn, AgentPublic


def _check_teams(table: RoutingTable, teams: list[str]) -> None:
    unknown = sorted(set(teams) - set(table.teams))
    if unknown:
        raise field_problem("body.teams", f"unknown teams {unknown}")


def _public(agent: Agent, load: int, reassigned: int = 0) -> AgentPublic:
    return AgentPublic(id=agent.id, name=agent.name, teams=agent.teams, skills=agent.skills,
                       languages=agent.languages, capacity=agent.capacity, status=agent.status,  # type: ignore[arg-type]
                       load=load, last_assigned_at=agent.last_assigned_at, reassigned=reassigned)


async def public_agent(session: AsyncSession, agent: Agent, reassigned: int = 0) -> AgentPublic:
    """The agent with their current load and how many tickets the change (re)assigned."""
    return _public(agent, (await agent_loads(session, [agent.id]))[agent.id], reassigned)


async def list_agents(session: AsyncSession, team: str | None = None) -> list[AgentPublic]:
    agents = [a for a in await session.scalars(select(Agent).order_by(Agent.id)) if team is None or team in a.teams]
    loads = await agent_loads(session, [a.id for a in agents])
    return [_public(a, loads[a.id]) for a in agents]


async def get_agent(session: AsyncSession, agent_id: str) -> AgentPublic:
    return await public_agent(session, await get_or_404(session, Agent, agent_id, "Agent"))


async def create_agent(session: AsyncSession, body: AgentIn, table: RoutingTable, now: datetime) -> AgentPublic:
    _check_teams(table, body.teams)
    async with session.begin():
        if await session.get(Agent, body.id) is not None:
            raise conflict(f"agent {body.id!r} exists", slug="duplicate-agent", field="body.id",
                           message="already exists")
        agent = Agent(**body.model_dump(), created_at=now, updated_at=now, last_assigned_at=None)
        session.add(agent)
        await session.flush()
        assigned = await assign_waiting_tickets(session, agent, now, table.lead_of) if agent.status == "online" else 0
    return await public_agent(session, agent, assigned)


async def update_agent(session: AsyncSession, agent_id: str, body: AgentPatchIn, table: RoutingTable,
                       now: datetime) -> AgentPublic:
    """Only the fields sent; the agent is locked on PostgreSQL while their tickets move."""
    async with session.begin():
        lock = session.bind.dialect.name == "postgresql"
        agent = await get_or_404(session, Agent, agent_id, "Agent", with_for_update=lock)
        changes = body.model_dump(exclude_unset=True, exclude_none=True)
        if "teams" in changes:
            _check_teams(table, changes["teams"])
        for key, value in changes.items():
            setattr(agent, key, value)
        agent.updated_at = now
        await session.flush()
        if agent.status != "online":
            moved = await reassign_tickets_of(session, agent, now, table.lead_of)
        else:
            moved = await assign_waiting_tickets(session, agent, now, table.lead_of)
    return await public_agent(session, agent, moved)
