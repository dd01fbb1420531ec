"""Spike alerts over classified feedback, published as `alert.raised.v1` (through the outbox).

Checked every `alert_check_seconds`:
- negative share over the last `alert_window_minutes` (at least `alert_min_volume` messages):
  above `alert_negative_share_warning` (15%) a warning, above `..._critical` (40%) a critical alert;
- negative volume of the last 24 h against the 24 h before: +`alert_volume_jump` (50%) or more
  raises a warning (critical at twice that jump), when the earlier day had `alert_volume_min_previous`.
An alert of a kind is raised again only after `alert_cooldown_minutes`, or at once when it escalates
from warning to critical.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from classify.models import AlertRecord, ClassificationRecord, outbox
from classify.settings import ClassifySettings
from closedloop.events import AlertRaisedV1
from closedloop.pagination import KeysetPage, keyset_page
from closedloop.worker import BackgroundWorker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Finding:
    kind: str
    severity: str
    message: str
    metrics: dict[str, float]


async def _counts(session: AsyncSession, start: datetime, end: datetime) -> tuple[int, int]:
    record = ClassificationRecord
    total, negative = (await session.execute(
        select(func.count(), func.count().filter(record.sentiment == "negative"))
        .where(record.created_at >= start, record.created_at < end))).one()
    return int(total or 0), int(negative or 0)


async def evaluate(session: AsyncSession, settings: ClassifySettings, now: datetime) -> list[Finding]:
    findings: list[Finding] = []
    window = timedelta(minutes=settings.alert_window_minutes)
    total, negative = await _counts(session, now - window, now + timedelta(seconds=1))
    if total >= settings.alert_min_volume and total:
        share = negative / total
        severity = ("critical" if share > settings.alert_negative_share_critical
                    else "warning" if share > settings.alert_negative_share_warning else None)
        if severity:
            findings.append(Finding(
                "negative_share", severity,
                f"{share:.0%} of the last {total} feedback messages ({settings.alert_window_minutes:g} min) are "
                f"negative (warning above {settings.alert_negative_share_warning:.0%}, critical above "
                f"{settings.alert_negative_share_critical:.0%}).",
                {"negative_share": round(share, 4), "negative": negative, "total": total,
                 "window_minutes": settings.alert_window_minutes}))
    day = timedelta(hours=24)
    _, last_day = await _counts(session, now - day, now + timedelta(seconds=1))
    _, day_before = await _counts(session, now - 2 * day, now - day)
    if day_before >= settings.alert_volume_min_previous and last_day >= day_before * (1 + settings.alert_volume_jump):
        growth = last_day / day_before - 1
        severity = "critical" if growth >= 2 * settings.alert_volume_jump else "warning"
        findings.append(Finding(
            "negative_volume_jump", severity,
            f"Negative feedback rose {growth:+.0%} in 24 h ({day_before} → {last_day}).",
            {"negative_last_24h": last_day, "negative_previous_24h": day_before, "growth": round(growth, 4)}))
    return findings


async def raise_alerts(session: AsyncSession, settings: ClassifySettings, now: datetime) -> list[AlertRecord]:
    """Evaluate and stage the alerts due (caller's transaction: alert row and event commit together)."""
    raised: list[AlertRecord] = []
    cooldown = timedelta(minutes=settings.alert_cooldown_minutes)
    for finding in await evaluate(session, settings, now):
        last = await session.scalar(select(AlertRecord).where(AlertRecord.kind == finding.kind)
                                    .order_by(AlertRecord.created_at.desc()).limit(1))
        escalates = last is not None and last.severity == "warning" and finding.severity == "critical"
        if last is not None and last.created_at > now - cooldown and not escalates:
            continue
        event = AlertRaisedV1(kind=finding.kind, severity=finding.severity,  # type: ignore[arg-type]
                              message=finding.message, metrics=finding.metrics)
        record = AlertRecord(kind=finding.kind, severity=finding.severity, message=finding.message,
                             metrics=finding.metrics, event_id=str(event.event_id), created_at=now)
        session.add(record)
        outbox.add(session, event)
        raised.append(record)
    return raised


class AlertWorker(BackgroundWorker):
    name = "classify-alerts"
    first_pass_at_start = False

    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: ClassifySettings) -> None:
        self.sessions = sessions
        self.settings = settings

    def between_passes(self) -> float:
        return self.settings.alert_check_seconds

    async def check(self) -> list[AlertRecord]:
        async with self.sessions() as session, session.begin():
            return await raise_alerts(session, self.settings, datetime.now(UTC))

    async def run_pass(self) -> bool:
        for alert in await self.check():
            log.warning("alert raised", extra={"kind": alert.kind, "severity": alert.severity})
        return False


async def alerts_page(session: AsyncSession, limit: int, cursor: str | None) -> KeysetPage[AlertRecord]:
    """The spike alerts raised, newest first."""
    return await keyset_page(session, select(AlertRecord), order=(AlertRecord.id,), limit=limit, cursor=cursor)
