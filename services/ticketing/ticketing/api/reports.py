"""Reports for team leads and support managers over HTTP; the queries are in `ticketing.reporting`."""

from datetime import datetime
from typing import Annotated

from fastapi import Query

from closedloop.api import SessionDep, api_router
from closedloop.auth import needs
from ticketing import reporting
from ticketing.api.deps import NowDep
from ticketing.schemas.reports import BacklogReport, ComplianceReport, CsatReport, ResponseTimesReport, TopIssuesReport

router = api_router("reports", 400)

Since = Annotated[datetime | None, Query(description="Start of the period (default: 7 days before `until`).")]
Until = Annotated[datetime | None, Query(description="End of the period (default: now).")]


@router.get("/reports/response-times", dependencies=needs("reports:read"), response_model=ResponseTimesReport,
            summary="First-response time and time to resolution (median, p90) of tickets opened in a period")
async def response_times(session: SessionDep, now: NowDep, since: Since = None,
                         until: Until = None) -> ResponseTimesReport:
    return await reporting.response_times(session, since, until, now)


@router.get("/reports/sla-compliance", dependencies=needs("reports:read"), response_model=ComplianceReport,
            summary="SLA compliance per team, priority and target, for tickets opened in a period")
async def sla_compliance(session: SessionDep, now: NowDep, since: Since = None,
                         until: Until = None) -> ComplianceReport:
    return await reporting.sla_compliance(session, since, until, now)


@router.get("/reports/backlog", dependencies=needs("reports:read"),
            response_model=BacklogReport, summary="Tickets not yet resolved, now")
async def backlog(session: SessionDep) -> BacklogReport:
    return await reporting.backlog(session)


@router.get("/reports/csat", dependencies=needs("reports:read"),
            response_model=CsatReport, summary="Customer satisfaction of ratings given in a period")
async def csat(session: SessionDep, now: NowDep, since: Since = None, until: Until = None) -> CsatReport:
    return await reporting.csat(session, since, until, now)


@router.get("/reports/top-issues", dependencies=needs("reports:read"), response_model=TopIssuesReport,
            summary="The 10 categories with the most tickets in a period, with the trend against the period before")
async def top_issues(session: SessionDep, now: NowDep, since: Since = None, until: Until = None,
                     limit: Annotated[int, Query(ge=1, le=50)] = 10) -> TopIssuesReport:
    return await reporting.top_issues(session, since, until, now, limit)
