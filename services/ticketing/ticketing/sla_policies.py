"""SLA policies: targets per priority and customer tier, in business hours or 24/7 (the clocks they
start are `sla.py`). Names are unique, and so is the (priority, tier) pair; each change is one
transaction (`async with session.begin():`), a duplicate a 409."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from uuid import uuid4

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.api import get_or_404
from closedloop.errors import FieldError, ProblemError
from ticketing.models import SlaPolicy
from ticketing.schemas.sla_policies import SlaPolicyIn


def _apply(row: SlaPolicy, policy: SlaPolicyIn) -> None:
    row.name, row.priority = policy.name, policy.priority
    row.customer_tier = policy.customer_tier.lower() if policy.customer_tier else None
    row.first_response_minutes, row.resolution_minutes = policy.first_response_minutes, policy.resolution_minutes
    row.warn_at_share, row.escalate_on_breach = policy.warn_at_share, policy.escalate_on_breach
    row.business_hours = policy.business_hours.model_dump(mode="json") if policy.business_hours else None


@asynccontextmanager
async def _unique(session: AsyncSession) -> AsyncIterator[None]:
    """The transaction; a unique constraint it breaks (at its commit) is the 409 naming both rules."""
    try:
        async with session.begin():
            yield
    except IntegrityError:
        raise ProblemError(409, "Conflict", "A policy with this name, or for this priority and tier, exists.",
                           slug="duplicate-policy",
                           errors=[FieldError(field="body.name", message="name must be unique"),
                                   FieldError(field="body.customer_tier",
                                              message="one policy per priority and tier")]) from None


async def list_policies(session: AsyncSession) -> list[SlaPolicy]:
    return list(await session.scalars(select(SlaPolicy).order_by(SlaPolicy.priority, SlaPolicy.customer_tier,
                                                                 SlaPolicy.name)))


async def get_policy(session: AsyncSession, policy_id: str) -> SlaPolicy:
    return await get_or_404(session, SlaPolicy, policy_id, "SLA policy")


async def create_policy(session: AsyncSession, policy: SlaPolicyIn, now: datetime) -> SlaPolicy:
    """Applies to tickets opened from now on."""
    async with _unique(session):
        row = SlaPolicy(id=str(uuid4()), created_at=now, updated_at=now)
        _apply(row, policy)
        session.add(row)
    return row


async def replace_policy(session: AsyncSession, policy_id: str, policy: SlaPolicyIn, now: datetime) -> SlaPolicy:
    """Running clocks keep the targets they started with."""
    async with _unique(session):
        row = await get_policy(session, policy_id)
        _apply(row, policy)
        row.updated_at = now
    return row


async def delete_policy(session: AsyncSession, policy_id: str) -> None:
    async with session.begin():
        await session.delete(await get_policy(session, policy_id))
