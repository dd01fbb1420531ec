"""Trend series from the pre-aggregated rows: any metric, per hour/day/week/month, filtered and grouped.

A series reads (periods x values x metrics) rows of `aggregates`, never the items. What it can answer
is what was pre-aggregated: the total, one dimension, or a pair of dimensions (daily), i.e. one filter and
one grouping, or two filters. Means and rates are sums divided at read time (sum / count), so they fold
correctly from days into weeks and months.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.errors import field_problem
from insights.dimensions import DIMENSIONS, HOURLY_METRICS, TOTAL, day_of, hour_of, month_of, week_of
from insights.models import Aggregate

Interval = Literal["hour", "day", "week", "month"]


@dataclass(frozen=True)
class MetricDefinition:
    numerator: dict[str, float]  # raw metric -> weight
    denominator: str | None = None
    scale: float = 1.0
    description: str = ""

    @property
    def raw(self) -> set[str]:
        return set(self.numerator) | ({self.denominator} if self.denominator else set())


METRICS: dict[str, MetricDefinition] = {
    "volume": MetricDefinition({"items": 1}, description="Feedback items received (classified)."),
    "negative_volume": MetricDefinition({"negative": 1}, description="Negative feedback items."),
    "negative_share": MetricDefinition({"negative": 1}, "items", description="Negative items / items."),
    "sentiment": MetricDefinition({"sentiment_sum": 1}, "items",
                                  description="Mean signed sentiment (-1 negative .. +1 positive)."),
    "csat": MetricDefinition({"csat_sum": 1}, "csat_n", description="Mean CSAT (1-5): surveys and ticket ratings."),
    "low_rating_share": MetricDefinition({"csat_low": 1}, "csat_n", description="Ratings of 1-2 / ratings."),
    "nps": MetricDefinition({"nps_promoters": 1, "nps_detractors": -1}, "nps_n", 100.0,
                            description="Net Promoter Score: % promoters (9-10) - % detractors (0-6)."),
    "first_response_minutes": MetricDefinition({"frt_sum_min": 1}, "frt_n",
                                               description="Mean minutes from ticket to first agent reply."),
    "resolution_hours": MetricDefinition({"resolution_sum_h": 1}, "resolution_n",
                                         description="Mean hours from ticket to (first) resolution."),
    "repeat_contact_rate": MetricDefinition({"repeat_contacts": 1}, "items",
                                            description="Items whose customer had written within 7 days before."),
    "tickets": MetricDefinition({"tickets": 1}, description="Tickets opened."),
    "negative_tickets": MetricDefinition({"tickets_negative": 1}, description="Tickets from negative feedback."),
    "reopen_rate": MetricDefinition({"reopened": 1}, "resolved", description="Reopens / resolved tickets."),
    "sla_breach_rate": MetricDefinition({"sla_breaches": 1}, "tickets", description="SLA breaches / tickets."),
    "reassignment_rate": MetricDefinition({"reassignments": 1}, "tickets",
                                          description="Reassignments / tickets."),
    "deliveries": MetricDefinition({"deliveries": 1}, description="Notifications delivered."),
    "failed_deliveries": MetricDefinition({"deliveries_failed": 1}, description="Notifications that failed."),
}

PERIOD = {"hour": hour_of, "day": day_of, "week": week_of, "month": month_of}


@dataclass(frozen=True)
class Point:
    period: datetime
    group: str
    metric: str
    value: float | None
    numerator: float
    denominator: float | None


def parse_filters(raw: list[str]) -> dict[str, str]:
    filters: dict[str, str] = {}
    for item in raw:
        name, sep, value = item.partition(":")
        if not sep or not value:
            raise field_problem("query.filter", f"{item!r}: write dimension:value, e.g. channel:email")
        if name not in DIMENSIONS:
            raise field_problem("query.filter", f"unknown dimension {name!r}; one of {', '.join(DIMENSIONS)}")
        if name in filters:
            raise field_problem("query.filter", f"dimension {name!r} filtered twice")
        filters[name] = value
    return filters


def choose_dimensions(group_by: str | None, filters: dict[str, str], interval: str) -> tuple[str, str]:
    names = sorted(set(filters) | ({group_by} if group_by else set()))
    if len(names) > 2:
        raise field_problem("query.filter", "at most two dimensions in all (one filter and one grouping, or two "
                                            "filters): only those combinations are pre-aggregated")
    if interval == "hour" and len(names) > 1:
        raise field_problem("query.interval", "hourly series exist per single dimension; use day or longer")
    if not names:
        return TOTAL, ""
    return (names[0], "") if len(names) == 1 else (names[0], names[1])


async def watermark(session: AsyncSession) -> datetime | None:
    """The latest hour with data: analyses run 'as of' it, so a replayed history reads as if it were now."""
    table = Aggregate.__table__
    latest = await session.scalar(select(func.max(table.c.bucket)).where(
        table.c.grain == "h", table.c.d1 == TOTAL, table.c.d2 == "", table.c.v1 == "", table.c.v2 == ""))
    if latest is not None and latest.tzinfo is None:
        latest = latest.replace(tzinfo=UTC)
    return latest


async def default_range(session: AsyncSession, start: datetime | None, end: datetime | None,
                        days: int = 90) -> tuple[datetime, datetime]:
    if end is None:
        latest = await watermark(session)
        end = (latest + timedelta(hours=1)) if latest else datetime.now(UTC)
    if start is None:
        start = day_of(end - timedelta(days=days))
    if start >= end:
        raise field_problem("query.start", "start must be before end")
    return start, end


async def read_sums(session: AsyncSession, raw: set[str], grain: str, d1: str, d2: str, start: datetime,
                    end: datetime, v1: str | None = None, v2: str | None = None) -> list[tuple]:
    """(bucket, v1, v2, metric, amount) for each non-zero sum of the wanted raw metrics."""
    table = Aggregate.__table__
    metrics = sorted(raw)
    conditions = [table.c.grain == grain, table.c.d1 == d1, table.c.d2 == d2,
                  table.c.bucket >= start, table.c.bucket < end]
    if v1 is not None:
        conditions.append(table.c.v1 == v1)
    if v2 is not None:
        conditions.append(table.c.v2 == v2)
    result = await session.execute(select(table.c.bucket, table.c.v1, table.c.v2, *(table.c[m] for m in metrics))
                                   .where(and_(*conditions)))
    out: list[tuple] = []
    for bucket, value1, value2, *amounts in result.all():
        out.extend((bucket, value1, value2, m, a) for m, a in zip(metrics, amounts, strict=True) if a)
    return out


async def series(session: AsyncSession, metrics: list[str], interval: Interval, start: datetime, end: datetime,
                 group_by: str | None = None, filters: dict[str, str] | None = None) -> list[Point]:
    filters = filters or {}
    for name in metrics:
        if name not in METRICS:
            raise field_problem("query.metric", f"unknown metric {name!r}; one of {', '.join(METRICS)}")
    if group_by is not None and group_by not in DIMENSIONS:
        raise field_problem("query.group_by", f"unknown dimension {group_by!r}; one of {', '.join(DIMENSIONS)}")
    d1, d2 = choose_dimensions(group_by, filters, interval)
    grain = "h" if interval == "hour" else "d"
    if grain == "h" and any(not METRICS[name].raw <= HOURLY_METRICS for name in metrics):
        raise field_problem("query.interval", "hourly series exist for volume, negative_volume and negative_share; "
                                              "use day or longer for the others")
    raw = set().union(*(METRICS[name].raw for name in metrics))
    rows = await read_sums(session, raw, grain, d1, d2, PERIOD[interval](start) if interval != "hour" else start,
                           end, v1=filters.get(d1) if d1 != TOTAL else None, v2=filters.get(d2) if d2 else None)
    period_of = PERIOD[interval]
    sums: defaultdict[tuple[datetime, str], defaultdict[str, float]] = defaultdict(lambda: defaultdict(float))
    for bucket, v1, v2, metric, amount in rows:
        if bucket.tzinfo is None:
            bucket = bucket.replace(tzinfo=UTC)
        group = TOTAL if group_by is None else (v1 if group_by == d1 else v2)
        sums[(period_of(bucket), group)][metric] += amount
    points = []
    for (period, group), values in sorted(sums.items()):
        for name in metrics:
            definition = METRICS[name]
            numerator = sum(values.get(raw_name, 0.0) * weight for raw_name, weight in definition.numerator.items())
            if definition.denominator is None:
                points.append(Point(period, group, name, numerator, numerator, None))
                continue
            denominator = values.get(definition.denominator, 0.0)
            value = definition.scale * numerator / denominator if denominator else None
            points.append(Point(period, group, name, value, numerator, denominator))
    return points


async def dimension_values(session: AsyncSession, dimension: str, start: datetime, end: datetime,
                           metric: str = "items", limit: int = 100) -> list[tuple[str, float]]:
    """The values a dimension took, largest first (for pickers and top-N lists)."""
    if dimension not in DIMENSIONS:
        raise field_problem("path.dimension", f"unknown dimension {dimension!r}; one of {', '.join(DIMENSIONS)}")
    table = Aggregate.__table__
    total = func.sum(table.c[metric])
    result = await session.execute(
        select(table.c.v1, total).where(table.c.grain == "d", table.c.d1 == dimension, table.c.d2 == "",
                                        table.c.bucket >= day_of(start), table.c.bucket < end)
        .group_by(table.c.v1).having(total > 0).order_by(total.desc()).limit(limit))
    return [(value, float(amount)) for value, amount in result.all()]
