"""The analyses that raise events (anomalies, churn risk, opportunities), run by the worker on a timer and
by the API on demand. Each runs 'as of' the read model's watermark, so a replayed history reads as if it
were live; each raises what it finds once (keys in the database), whichever replica finds it first."""

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from closedloop.worker import BackgroundWorker
from insights import anomalies, opportunities, segments
from insights.config import current_config
from insights.dimensions import day_of
from insights.series import watermark
from insights.settings import InsightsSettings

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    as_of: datetime | None
    anomalies: int = 0
    churn_risks: int = 0
    opportunities: int = 0


async def scan_anomalies(session: AsyncSession, settings: InsightsSettings, start: datetime, end: datetime,
                         now: datetime) -> tuple[list[anomalies.Anomaly], list[anomalies.Anomaly]]:
    config = await current_config(session, settings)
    found = await anomalies.find_anomalies(session, start, end, config.sensitivity())
    return found, await anomalies.raise_anomalies(session, found, now)


async def scan_churn(session: AsyncSession, settings: InsightsSettings, as_of: datetime, now: datetime
                     ) -> tuple[list[segments.ChurnRisk], list[segments.ChurnRisk]]:
    config = await current_config(session, settings)
    risks = await segments.find_churn_risks(session, as_of, min_value=config.churn_min_value,
                                            negative_contacts=config.churn_negative_contacts,
                                            window_days=config.churn_window_days)
    return risks, await segments.raise_churn_risks(session, risks, as_of, now)


async def scan_opportunities(session: AsyncSession, settings: InsightsSettings, as_of: datetime, now: datetime
                             ) -> tuple[list[opportunities.Opportunity], list[opportunities.Opportunity]]:
    found = await opportunities.find_opportunities(session, as_of, min_mentions=settings.opportunity_min_mentions)
    return found, await opportunities.raise_opportunities(session, found, as_of, now)


async def run_all(sessions: async_sessionmaker[AsyncSession], settings: InsightsSettings) -> RunSummary:
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        latest = await watermark(session)
        if latest is None:
            return RunSummary(None)
        as_of = latest + timedelta(hours=1)
        # Yesterday (complete) and today so far: an anomaly in progress is raised the same day.
        _, raised = await scan_anomalies(session, settings, day_of(as_of) - timedelta(days=1), as_of, now)
        _, risks = await scan_churn(session, settings, as_of, now)
        _, found = await scan_opportunities(session, settings, as_of, now)
    return RunSummary(as_of, len(raised), len(risks), len(found))


class AnalysisWorker(BackgroundWorker):
    name = "insights-analysis"
    first_pass_at_start = False

    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: InsightsSettings,
                 after_run: Callable[[RunSummary], Awaitable[None]] | None = None) -> None:
        self.sessions, self.settings = sessions, settings
        self.after_run = after_run

    def enabled(self) -> bool:
        return self.settings.analysis_interval_seconds > 0

    def between_passes(self) -> float:
        return self.settings.analysis_interval_seconds

    async def run_pass(self) -> bool:
        summary = await run_all(self.sessions, self.settings)
        if self.after_run is not None:
            await self.after_run(summary)
        log.info("analyses ran", extra={"anomalies": summary.anomalies, "churn_risks": summary.churn_risks,
                                        "opportunities": summary.opportunities})
        return False
