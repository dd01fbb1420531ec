"""SLA policies: targets per priority and customer tier, in business hours or 24/7."""

from uuid import uuid4

from fastapi import Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from closedloop.api import SessionDep, api_router, get_or_404
from closedloop.auth import needs
from closedloop.errors import FieldError, ProblemError, problem_responses
from ticketing.api.deps import NowDep
from ticketing.models import SlaPolicy
from ticketing.schemas import SlaPolicyIn, SlaPolicyPublic

router = api_router("sla policies")


def _public(row: SlaPolicy) -> SlaPolicyPublic:
    return SlaPolicyPublic.model_validate({
        "id": row.id, "name": row.name, "priority": row.priority, "customer_tier": row.customer_tier,
        "first_response_minutes": row.first_response_minutes, "resolution_minutes": row.resolution_minutes,
        "warn_at_share": row.warn_at_share, "business_hours": row.business_hours,
        "escalate_on_breach": row.escalate_on_breach, "created_at": row.created_at, "updated_at": row.updated_at})


def _apply(row: SlaPolicy, policy: SlaPolicyIn) -> None:
    row.name, row.priority = policy.name, policy.priority
    row.customer_tier = policy.customer_tier.lower() if policy.customer_tier else None
    row.first_response_minutes, row.resolution_minutes = policy.first_response_minutes, policy.resolution_minutes
    row.warn_at_share, row.escalate_on_breach = policy.warn_at_share, policy.escalate_on_breach
    row.business_hours = policy.business_hours.model_dump(mode="json") if policy.business_hours else None


async def _commit(session: SessionDep) -> None:
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise ProblemError(409, "Conflict", "A policy with this name, or for this priority and tier, exists.",
                           slug="duplicate-policy",
                           errors=[FieldError(field="body.name", message="name must be unique"),
                                   FieldError(field="body.customer_tier",
                                              message="one policy per priority and tier")]) from None


@router.get("/sla-policies", dependencies=needs("tickets:read"),
            response_model=list[SlaPolicyPublic], summary="SLA policies")
async def list_policies(session: SessionDep) -> list[SlaPolicyPublic]:
    rows = await session.scalars(select(SlaPolicy).order_by(SlaPolicy.priority, SlaPolicy.customer_tier,
                                                            SlaPolicy.name))
    return [_public(r) for r in rows]


@router.post("/sla-policies", dependencies=needs("config:write"),
             response_model=SlaPolicyPublic, status_code=201, responses=problem_responses(409),
             summary="Add an SLA policy (applies to tickets opened from now on)")
async def create_policy(policy: SlaPolicyIn, session: SessionDep, now: NowDep) -> SlaPolicyPublic:
    row = SlaPolicy(id=str(uuid4()), created_at=now, updated_at=now)
    _apply(row, policy)
    session.add(row)
    await _commit(session)
    return _public(row)


async def _policy(session: SessionDep, policy_id: str) -> SlaPolicy:
    return await get_or_404(session, SlaPolicy, policy_id, "SLA policy")


@router.put("/sla-policies/{policy_id}", dependencies=needs("config:write"),
            response_model=SlaPolicyPublic, responses=problem_responses(404, 409),
            summary="Replace an SLA policy (running clocks keep the targets they started with)")
async def replace_policy(policy_id: str, policy: SlaPolicyIn, session: SessionDep, now: NowDep) -> SlaPolicyPublic:
    row = await _policy(session, policy_id)
    _apply(row, policy)
    row.updated_at = now
    await _commit(session)
    return _public(row)


@router.delete("/sla-policies/{policy_id}", dependencies=needs("config:write"),
               status_code=204, responses=problem_responses(404),
               summary="Delete an SLA policy")
async def delete_policy(policy_id: str, session: SessionDep) -> Response:
    await session.delete(await _policy(session, policy_id))
    await session.commit()
    return Response(status_code=204)
