"""Notify's retention rule: delivered deliveries are deleted (failed and pending ones stay for replay)."""

from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.retention import BATCH, RetentionRule
from notify.models import Delivery


async def delete_delivered(session: AsyncSession, cutoff: datetime) -> int:
    ids = select(Delivery.id).where(Delivery.status == "delivered", Delivery.delivered_at < cutoff).limit(BATCH)
    result = cast(CursorResult[Any], await session.execute(delete(Delivery).where(Delivery.id.in_(ids))))
    return result.rowcount or 0


def notify_retention_rules(days: float) -> list[RetentionRule]:
    return [RetentionRule("delivered deliveries", days, delete_delivered)]
