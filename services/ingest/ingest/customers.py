"""Customer profiles and feedback invitations: use cases that own their transactions."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ingest.intake import lock_customer
from ingest.models import Customer, Invitation
from ingest.schemas.customers import CustomerProfileIn
from ingest.schemas.invitations import InvitationDecision, InvitationIn


async def upsert_customer(session: AsyncSession, customer_id: str, body: CustomerProfileIn) -> tuple[Customer, bool]:
    """Create or replace the profile; answers it and whether it was created."""
    for _ in range(2):  # a concurrent first PUT may win the insert: then this one updates
        try:
            async with session.begin():
                now = datetime.now(UTC)
                await lock_customer(session, customer_id)
                customer = await session.get(Customer, customer_id)
                created = customer is None
                if customer is None:
                    customer = Customer(id=customer_id, created_at=now)
                    session.add(customer)
                customer.email = str(body.email).lower() if body.email else None
                customer.name, customer.tier = body.name, body.tier
                customer.value, customer.locale = body.value, body.locale
                customer.updated_at = now
        except IntegrityError:
            continue
        return customer, created
    raise RuntimeError("customer upsert kept conflicting")


async def decide_invitation(session: AsyncSession, body: InvitationIn, cooldown_days: float) -> InvitationDecision:
    """May this customer be asked for feedback now? Records the invitation when so (unless a dry run)."""
    cooldown = timedelta(days=cooldown_days)
    now = datetime.now(UTC)
    async with session.begin():
        await lock_customer(session, body.customer_id)
        last = await session.scalar(select(func.max(Invitation.invited_at))
                                    .where(Invitation.customer_id == body.customer_id))
        if last is not None and last.tzinfo is None:  # SQLite hands aggregates back naive
            last = last.replace(tzinfo=UTC)
        if last is not None and now - last < cooldown:
            return InvitationDecision(
                allowed=False, last_invited_at=last, next_allowed_at=last + cooldown,
                reason=f"already invited on {last:%Y-%m-%d %H:%M} UTC; at most once every {cooldown_days:g} days")
        reason = (f"no invitation in the last {cooldown_days:g} days" if last is not None
                  else "never invited before")
        if body.dry_run:
            return InvitationDecision(allowed=True, reason=reason, last_invited_at=last, next_allowed_at=now)
        invitation = Invitation(id=str(uuid4()), customer_id=body.customer_id, channel=body.channel,
                                campaign=body.campaign, invited_at=now)
        session.add(invitation)
    return InvitationDecision(allowed=True, reason=reason, invitation_id=invitation.id, last_invited_at=last,
                              next_allowed_at=now + cooldown)
