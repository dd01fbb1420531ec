"""The audit log: every change to a ticket, with who and when, in the change's own transaction."""

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ticketing.models import AuditEntry


def audit(session: AsyncSession, ticket_id: str, actor: str, action: str, at: datetime, **details: Any) -> None:
    session.add(AuditEntry(ticket_id=ticket_id, actor=actor, action=action, created_at=at,
                           details={k: v for k, v in details.items() if v is not None}))
