"""No spam: de-duplication, a per-recipient frequency cap, and quiet hours.

Applies to the channels people read (e-mail, Slack); webhooks are machine-to-machine and exempt.
Urgent notifications (P0 tickets, alerts) bypass the cap and quiet hours, never de-duplication.
A suppressed notification is still recorded (status "suppressed", with its reason).
"""

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from notify.models import Delivery
from notify.settings import NotifySettings

HUMAN_CHANNELS = ("email", "slack")
COUNTED = ("pending", "delivered", "failed")


@dataclass(frozen=True)
class Decision:
    status: str  # pending or suppressed
    next_attempt_at: datetime
    reason: str | None = None


def zone(name: str | None, default: str) -> ZoneInfo:
    for candidate in (name, default, "UTC"):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    raise AssertionError("UTC is always known")


def _clock(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def quiet_until(now: datetime, start: str, end: str, tz: ZoneInfo) -> datetime | None:
    """The end of the quiet hours `now` falls in (local clock of `tz`), or None outside them.
    Start and end are local times; a window may wrap midnight (21:00–08:00)."""
    begin, finish = _clock(start), _clock(end)
    if begin == finish:
        return None
    local = now.astimezone(tz)
    clock = local.time().replace(tzinfo=None)
    inside = begin <= clock < finish if begin < finish else (clock >= begin or clock < finish)
    if not inside:
        return None
    day = local.date() if clock < finish else local.date() + timedelta(days=1)
    return datetime.combine(day, finish, tzinfo=tz).astimezone(now.tzinfo)


async def decide(session: AsyncSession, settings: NotifySettings, *, channel: str, recipient: str,
                 template_key: str, ticket_id: str | None, urgent: bool, timezone: str | None,
                 now: datetime) -> Decision:
    if channel not in HUMAN_CHANNELS:
        return Decision("pending", now)
    if ticket_id is not None:
        since = now - timedelta(seconds=settings.dedupe_window_seconds)
        earlier = await session.scalar(
            select(Delivery.id).where(Delivery.recipient == recipient, Delivery.template_key == template_key,
                                      Delivery.ticket_id == ticket_id, Delivery.status.in_(COUNTED),
                                      Delivery.created_at >= since).limit(1))
        if earlier is not None:
            return Decision("suppressed", now, f"duplicate: the same notification went to this recipient "
                                               f"within {settings.dedupe_window_seconds:g}s (delivery {earlier})")
    if urgent:
        return Decision("pending", now)
    cap = settings.frequency_cap_per_hour
    if cap > 0:
        sent = await session.scalar(
            select(func.count()).select_from(Delivery)
            .where(Delivery.recipient == recipient, Delivery.channel.in_(HUMAN_CHANNELS),
                   Delivery.status.in_(COUNTED), Delivery.created_at >= now - timedelta(hours=1))) or 0
        if sent >= cap:
            return Decision("suppressed", now, f"frequency_cap: {sent} notifications to this recipient in the "
                                               f"last hour (cap {cap})")
    until = quiet_until(now, settings.quiet_hours_start, settings.quiet_hours_end,
                        zone(timezone, settings.default_timezone))
    if until is not None:
        return Decision("pending", until, f"quiet_hours: postponed until {until.isoformat()}")
    return Decision("pending", now)
