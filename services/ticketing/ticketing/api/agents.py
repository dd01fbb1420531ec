"""Agents: teams, skills, languages, capacity and availability. Going offline hands the agent's
active tickets to others; coming online (or more capacity) picks up tickets waiting for an agent."""

from sqlalchemy import select

from closedloop.api import SessionDep, api_router, get_or_404
from closedloop.auth import needs
from closedloop.errors import conflict, field_problem, problem_responses
from ticketing.api.deps import NowDep, TableDep
from ticketing.assignment import agent_loads, assign_waiting_tickets, reassign_tickets_of
from ticketing.models import Agent
from ticketing.routing import RoutingTable
from ticketing.schemas import AgentIn, AgentPublic, AgentUpdate

router = api_router("agents")


def _check_teams(table: RoutingTable, teams: list[str]) -> None:
    unknown = sorted(set(teams) - set(table.teams))
    if unknown:
        raise field_problem("body.teams", f"unknown teams {unknown}")


async def _public(session: SessionDep, agent: Agent, reassigned: int = 0) -> AgentPublic:
    load = (await agent_loads(session, [agent.id]))[agent.id]
    return AgentPublic(id=agent.id, name=agent.name, teams=agent.teams, skills=agent.skills,
                       languages=agent.languages, capacity=agent.capacity, status=agent.status,  # type: ignore[arg-type]
                       load=load, last_assigned_at=agent.last_assigned_at, reassigned=reassigned)


@router.get("/agents", dependencies=needs("tickets:read"),
            response_model=list[AgentPublic], summary="Agents with their current load")
async def list_agents(session: SessionDep, team: str | None = None) -> list[AgentPublic]:
    agents = [a for a in await session.scalars(select(Agent).order_by(Agent.id)) if team is None or team in a.teams]
    loads = await agent_loads(session, [a.id for a in agents])
    return [AgentPublic(id=a.id, name=a.name, teams=a.teams, skills=a.skills, languages=a.languages,
                        capacity=a.capacity, status=a.status, load=loads[a.id],  # type: ignore[arg-type]
                        last_assigned_at=a.last_assigned_at) for a in agents]


@router.post("/agents", dependencies=needs("config:write"),
             response_model=AgentPublic, status_code=201, responses=problem_responses(409),
             summary="Add an agent (when online, they pick up tickets waiting in their teams)")
async def create_agent(body: AgentIn, session: SessionDep, table: TableDep, now: NowDep) -> AgentPublic:
    _check_teams(table, body.teams)
    if await session.get(Agent, body.id) is not None:
        raise conflict(f"agent {body.id!r} exists", slug="duplicate-agent", field="body.id", message="already exists")
    agent = Agent(**body.model_dump(), created_at=now, updated_at=now, last_assigned_at=None)
    session.add(agent)
    await session.flush()
    assigned = await assign_waiting_tickets(session, agent, now, table.lead_of) if agent.status == "online" else 0
    await session.commit()
    return await _public(session, agent, assigned)


@router.get("/agents/{agent_id}", dependencies=needs("tickets:read"),
            response_model=AgentPublic, responses=problem_responses(404), summary="One agent")
async def get_agent(agent_id: str, session: SessionDep) -> AgentPublic:
    agent = await get_or_404(session, Agent, agent_id, "Agent")
    return await _public(session, agent)


@router.patch("/agents/{agent_id}", dependencies=needs("config:write"),
              response_model=AgentPublic, responses=problem_responses(404),
              summary="Change an agent; going offline or away reassigns their active tickets")
async def update_agent(agent_id: str, body: AgentUpdate, session: SessionDep, table: TableDep,
                       now: NowDep) -> AgentPublic:
    lock = session.bind.dialect.name == "postgresql"
    agent = await get_or_404(session, Agent, agent_id, "Agent", with_for_update=lock)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if "teams" in changes:
        _check_teams(table, changes["teams"])
    for key, value in changes.items():
        setattr(agent, key, value)
    agent.updated_at = now
    await session.flush()
    moved = 0
    if agent.status != "online":
        moved = await reassign_tickets_of(session, agent, now, table.lead_of)
    else:
        moved = await assign_waiting_tickets(session, agent, now, table.lead_of)
    await session.commit()
    return await _public(session, agent, moved)
