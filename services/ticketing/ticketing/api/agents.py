"""Agents over HTTP; the work (and what a change reassigns) is in `ticketing.agents`."""

from closedloop.api import SessionDep, api_router
from closedloop.auth import needs
from closedloop.errors import problem_responses
from ticketing import agents
from ticketing.api.deps import NowDep, TableDep
from ticketing.schemas.agents import AgentIn, AgentPatchIn, AgentPublic

router = api_router("agents")


@router.get("/agents", dependencies=needs("tickets:read"),
            response_model=list[AgentPublic], summary="Agents with their current load")
async def list_agents(session: SessionDep, team: str | None = None) -> list[AgentPublic]:
    return await agents.list_agents(session, team)


@router.post("/agents", dependencies=needs("config:write"),
             response_model=AgentPublic, status_code=201, responses=problem_responses(409),
             summary="Add an agent (when online, they pick up tickets waiting in their teams)")
async def create_agent(body: AgentIn, session: SessionDep, table: TableDep, now: NowDep) -> AgentPublic:
    return await agents.create_agent(session, body, table, now)


@router.get("/agents/{agent_id}", dependencies=needs("tickets:read"),
            response_model=AgentPublic, responses=problem_responses(404), summary="One agent")
async def get_agent(agent_id: str, session: SessionDep) -> AgentPublic:
    return await agents.get_agent(session, agent_id)


@router.patch("/agents/{agent_id}", dependencies=needs("config:write"),
              response_model=AgentPublic, responses=problem_responses(404),
              summary="Change an agent; going offline or away reassigns their active tickets")
async def update_agent(agent_id: str, body: AgentPatchIn, session: SessionDep, table: TableDep,
                       now: NowDep) -> AgentPublic:
    return await agents.update_agent(session, agent_id, body, table, now)
