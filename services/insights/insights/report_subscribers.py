"""Who receives the weekly report, and in which language. Each change opens its own transaction (ADR 0014)."""

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.api import get_or_404
from insights.models import ReportSubscriber


async def all_subscribers(session: AsyncSession) -> list[ReportSubscriber]:
    return list(await session.scalars(select(ReportSubscriber).order_by(ReportSubscriber.email)))


async def subscribe(session: AsyncSession, email: str, name: str | None, language: str) -> ReportSubscriber:
    """Subscribe `email`, or change its name and language when it is subscribed already."""
    async with session.begin():
        row = await session.get(ReportSubscriber, email)
        if row is None:
            row = ReportSubscriber(email=email, created_at=datetime.now(UTC))
            session.add(row)
        row.name, row.language = name, language
    return row


async def unsubscribe(session: AsyncSession, email: str) -> None:
    async with session.begin():
        await session.delete(await get_or_404(session, ReportSubscriber, email, "Subscriber"))
