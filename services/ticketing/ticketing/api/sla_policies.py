"""SLA policies over HTTP; the work is in `ticketing.sla_policies`."""

from fastapi import Response

from closedloop.api import SessionDep, api_router
from closedloop.auth import needs
from closedloop.errors import problem_responses
from ticketing import sla_policies
from ticketing.api.deps import NowDep
from ticketing.models import SlaPolicy
from ticketing.schemas.sla_policies import SlaPolicyIn, SlaPolicyPublic

router = api_router("sla policies")


def _public(row: SlaPolicy) -> SlaPolicyPublic:
    return SlaPolicyPublic.model_validate({
        "id": row.id, "name": row.name, "priority": row.priority, "customer_tier": row.customer_tier,
        "first_response_minutes": row.first_response_minutes, "resolution_minutes": row.resolution_minutes,
        "warn_at_share": row.warn_at_share, "business_hours": row.business_hours,
        "escalate_on_breach": row.escalate_on_breach, "created_at": row.created_at, "updated_at": row.updated_at})


@router.get("/sla-policies", dependencies=needs("tickets:read"),
            response_model=list[SlaPolicyPublic], summary="SLA policies")
async def list_policies(session: SessionDep) -> list[SlaPolicyPublic]:
    return [_public(r) for r in await sla_policies.list_policies(session)]


@router.post("/sla-policies", dependencies=needs("config:write"),
             response_model=SlaPolicyPublic, status_code=201, responses=problem_responses(409),
             summary="Add an SLA policy (applies to tickets opened from now on)")
async def create_policy(policy: SlaPolicyIn, session: SessionDep, now: NowDep) -> SlaPolicyPublic:
    return _public(await sla_policies.create_policy(session, policy, now))


@router.put("/sla-policies/{policy_id}", dependencies=needs("config:write"),
            response_model=SlaPolicyPublic, responses=problem_responses(404, 409),
            summary="Replace an SLA policy (running clocks keep the targets they started with)")
async def replace_policy(policy_id: str, policy: SlaPolicyIn, session: SessionDep, now: NowDep) -> SlaPolicyPublic:
    return _public(await sla_policies.replace_policy(session, policy_id, policy, now))


@router.delete("/sla-policies/{policy_id}", dependencies=needs("config:write"),
               status_code=204, responses=problem_responses(404),
               summary="Delete an SLA policy")
async def delete_policy(policy_id: str, session: SessionDep) -> Response:
    await sla_policies.delete_policy(session, policy_id)
    return Response(status_code=204)
