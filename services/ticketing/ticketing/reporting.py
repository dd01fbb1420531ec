"""Reports for team leads and support managers (`GET /v1/reports/...`). Periods are [since, until); the
default is the seven days up to now. Times are calendar minutes. Read-only: no transaction of their own."""

import math
import statistics
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.errors import FieldError, ProblemError
from ticketing.assignment import ACTIVE_STATUSES
from ticketing.models import CsatResponse, SlaClock, Ticket
from ticketing.schemas.reports import (
    BacklogGroup,
    BacklogReport,
    ComplianceReport,
    ComplianceRow,
    CsatGroup,
    CsatReport,
    Durations,
    ResponseTimesGroup,
    ResponseTimesReport,
    TopIssue,
    TopIssuesReport,
)

# Reports compare a period with the one of equal length before it: bounded, that stays a valid date.
EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(3000, 1, 1, tzinfo=UTC)


def _period(since: datetime | None, until: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise ProblemError(400, "Invalid period", f"{name} needs a time zone", slug="invalid-period",
                               errors=[FieldError(field=f"query.{name}", message="add a zone, e.g. Z")])
        if value is not None and not EARLIEST <= value < LATEST:
            raise ProblemError(400, "Invalid period", f"{name} must be in 1970-2999", slug="invalid-period",
                               errors=[FieldError(field=f"query.{name}", message="must be in 1970-2999")])
    until = until or now + timedelta(microseconds=1)  # the period includes this very moment
    since = since or until - timedelta(days=7)
    if since >= until:
        raise ProblemError(400, "Invalid period", "since must be before until", slug="invalid-period",
                           errors=[FieldError(field="query.since", message="must be before until")])
    return since, until


def _durations(minutes: list[float]) -> Durations:
    if not minutes:
        return Durations(count=0, median_minutes=None, p90_minutes=None)
    ordered = sorted(minutes)
    p90 = ordered[max(math.ceil(0.9 * len(ordered)) - 1, 0)]  # nearest rank
    return Durations(count=len(ordered), median_minutes=round(statistics.median(ordered), 2),
                     p90_minutes=round(p90, 2))


async def _tickets_created(session: AsyncSession, since: datetime, until: datetime) -> list[Any]:
    # Only the columns the report reads, as rows (attribute access like the model): building ORM objects
    # for 10,000 tickets took most of the report's time.
    return list((await session.execute(
        select(Ticket.team, Ticket.priority, Ticket.created_at, Ticket.first_responded_at, Ticket.resolved_at)
        .where(Ticket.created_at >= since, Ticket.created_at < until, Ticket.merged_into.is_(None)))).all())


def _group(tickets: list[Any], **key: str) -> ResponseTimesGroup:
    def minutes(attr: str) -> list[float]:
        return [(getattr(t, attr) - t.created_at).total_seconds() / 60 for t in tickets if getattr(t, attr)]

    return ResponseTimesGroup(first_response=_durations(minutes("first_responded_at")),
                              resolution=_durations(minutes("resolved_at")), **key)


async def response_times(session: AsyncSession, since: datetime | None, until: datetime | None,
                         now: datetime) -> ResponseTimesReport:
    since, until = _period(since, until, now)
    tickets = await _tickets_created(session, since, until)
    teams, priorities = defaultdict(list), defaultdict(list)
    for t in tickets:
        teams[t.team].append(t)
        priorities[t.priority].append(t)
    return ResponseTimesReport(since=since, until=until, overall=_group(tickets),
                               by_team=[_group(v, team=k) for k, v in sorted(teams.items())],
                               by_priority=[_group(v, priority=k) for k, v in sorted(priorities.items())])


async def sla_compliance(session: AsyncSession, since: datetime | None, until: datetime | None,
                         now: datetime) -> ComplianceReport:
    since, until = _period(since, until, now)
    rows = await session.execute(
        select(Ticket.team, Ticket.priority, SlaClock.target, SlaClock.stopped_at, SlaClock.breached_at)
        .join(SlaClock, SlaClock.ticket_id == Ticket.id)
        .where(Ticket.created_at >= since, Ticket.created_at < until))
    counts: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for team, priority, target, stopped_at, breached_at in rows.all():
        if breached_at is not None:
            counts[(team, priority, target)][1] += 1
        elif stopped_at is not None:
            counts[(team, priority, target)][0] += 1
    result = [ComplianceRow(team=k[0], priority=k[1], target=k[2], met=m, breached=b,
                            compliance=round(m / (m + b), 3) if m + b else None)
              for k, (m, b) in sorted(counts.items())]
    met, breached = sum(r.met for r in result), sum(r.breached for r in result)
    return ComplianceReport(since=since, until=until, rows=result,
                            overall=round(met / (met + breached), 3) if met + breached else None)


async def backlog(session: AsyncSession) -> BacklogReport:
    # Rows of the needed columns, not ORM objects (see _tickets_created).
    tickets = list((await session.execute(
        select(Ticket.team, Ticket.priority, Ticket.status, Ticket.assignee, Ticket.sla_breached, Ticket.created_at)
        .where(Ticket.status.in_(ACTIVE_STATUSES)))).all())

    def groups(attr: str) -> list[BacklogGroup]:
        grouped: dict[str, list[Any]] = defaultdict(list)
        for t in tickets:
            grouped[getattr(t, attr)].append(t)
        return [BacklogGroup(key=k, open_tickets=len(v), breached=sum(1 for t in v if t.sla_breached),
                             oldest_created_at=min(t.created_at for t in v)) for k, v in sorted(grouped.items())]

    return BacklogReport(total=len(tickets), unassigned=sum(1 for t in tickets if t.assignee is None),
                         by_status=dict(Counter(t.status for t in tickets)), by_team=groups("team"),
                         by_priority=groups("priority"))


async def csat(session: AsyncSession, since: datetime | None, until: datetime | None, now: datetime) -> CsatReport:
    since, until = _period(since, until, now)
    rows = (await session.execute(
        select(CsatResponse.score, Ticket.team).join(Ticket, Ticket.id == CsatResponse.ticket_id)
        .where(CsatResponse.created_at >= since, CsatResponse.created_at < until))).all()
    scores = [score for score, _ in rows]
    teams: dict[str, list[int]] = defaultdict(list)
    for score, team in rows:
        teams[team].append(score)
    return CsatReport(
        since=since, until=until, responses=len(scores),
        average=round(statistics.fmean(scores), 2) if scores else None,
        satisfied_share=round(sum(1 for s in scores if s >= 4) / len(scores), 3) if scores else None,
        distribution={str(i): scores.count(i) for i in range(1, 6)},
        by_team=[CsatGroup(key=k, responses=len(v), average=round(statistics.fmean(v), 2))
                 for k, v in sorted(teams.items())])


async def top_issues(session: AsyncSession, since: datetime | None, until: datetime | None, now: datetime,
                     limit: int = 10) -> TopIssuesReport:
    since, until = _period(since, until, now)
    before = since - (until - since)

    async def counts(start: datetime, end: datetime) -> dict[str, int]:
        rows = await session.execute(select(Ticket.category, func.count()).where(
            Ticket.created_at >= start, Ticket.created_at < end).group_by(Ticket.category))
        return dict(rows.tuples().all())

    current, previous = await counts(since, until), await counts(before, since)
    labels = dict((await session.execute(select(Ticket.category, Ticket.category_label)
                                         .where(Ticket.category.in_(list(current))))).tuples().all())
    items = []
    for category, count in sorted(current.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]:
        prev = previous.get(category, 0)
        change = round((count - prev) / prev, 3) if prev else None
        trend = "new" if not prev else "up" if count > prev else "down" if count < prev else "flat"
        items.append(TopIssue(category=category, category_label=labels.get(category, category), count=count,
                              previous_count=prev, change=change, trend=trend))
    return TopIssuesReport(since=since, until=until, items=items)

