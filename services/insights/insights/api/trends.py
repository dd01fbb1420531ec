"""Trends and drill-down over the pre-aggregated read model; every series also as CSV."""

import csv
import io
from datetime import datetime
from typing import Annotated, Literal

from fastapi import Query
from fastapi.responses import Response

from closedloop.api import SessionDep, api_router
from closedloop.auth import needs
from closedloop.errors import problem_responses
from insights.dimensions import DIMENSIONS
from insights.schemas.trends import DimensionValue, FunnelStep, MetricInfo, TrendPoint, TrendSeries
from insights.segments import funnel
from insights.series import METRICS, Interval, default_range, dimension_values, parse_filters, series

router = api_router("trends")

MetricQuery = Annotated[list[str], Query(description=f"One or more of: {', '.join(METRICS)}.")]
FilterQuery = Annotated[list[str], Query(description="`dimension:value`, e.g. `channel:email` (repeatable).")]
Dimension = Literal[DIMENSIONS]  # type: ignore[valid-type]


@router.get("/metrics", dependencies=needs("reports:read"),
            response_model=list[MetricInfo], summary="The metrics a trend can show")
async def list_metrics() -> list[MetricInfo]:
    return [MetricInfo(name=name, description=d.description, ratio=d.denominator is not None)
            for name, d in METRICS.items()]


@router.get("/trends", dependencies=needs("reports:read"),
            response_model=TrendSeries, summary="A metric over time, filtered and grouped",
            responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with `format=csv`."}})
async def get_trends(session: SessionDep, metric: MetricQuery = ["volume"],  # noqa: B006
                     interval: Interval = "day", start: datetime | None = None, end: datetime | None = None,
                     group_by: Dimension | None = None, filter: FilterQuery = [],  # noqa: B006
                     format: Literal["json", "csv"] = "json") -> TrendSeries | Response:
    """Volume, negative share, sentiment, CSAT, NPS, response and resolution times, repeat-contact rate
    and more, per hour/day/week/month (UTC). `group_by` one dimension and/or `filter` by others: at most
    two dimensions in all (that is what is pre-aggregated; hourly series take one). Default range: the
    90 days up to the latest data."""
    filters = parse_filters(filter)
    start, end = await default_range(session, start, end)
    points = await series(session, metric, interval, start, end, group_by, filters)
    if format == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["period", "group", "metric", "value", "numerator", "denominator"])
        for p in points:
            writer.writerow([p.period.isoformat(), p.group, p.metric, "" if p.value is None else p.value,
                             p.numerator, "" if p.denominator is None else p.denominator])
        name = "-".join(metric) + f"-{interval}.csv"
        return Response(out.getvalue(), media_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
    return TrendSeries(metrics=metric, interval=interval, start=start, end=end, group_by=group_by, filters=filters,
                       points=[TrendPoint(**p.__dict__) for p in points])


@router.get("/dimensions/{dimension}/values", dependencies=needs("reports:read"),
            response_model=list[DimensionValue], responses=problem_responses(404),
            summary="The values a dimension took, by volume")
async def get_dimension_values(dimension: Dimension, session: SessionDep, start: datetime | None = None,
                               end: datetime | None = None,
                               metric: Literal["items", "tickets", "negative"] = "items",
                               limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[DimensionValue]:
    """Feedback dimensions count `items`; `team` and `agent` are known from tickets: use `metric=tickets`."""
    start, end = await default_range(session, start, end)
    return [DimensionValue(value=v, items=n) for v, n in await dimension_values(session, dimension, start, end,
                                                                                 metric, limit)]


@router.get("/funnel", dependencies=needs("reports:read"),
            response_model=dict[str, list[FunnelStep]],
            summary="Consulted -> ticket -> responded -> resolved -> rated -> satisfied, with drop-off")
async def get_funnel(session: SessionDep, start: datetime | None = None, end: datetime | None = None,
                     group_by: Dimension | None = None) -> dict[str, list[FunnelStep]]:
    """Per group when `group_by` is given (ticket dimensions such as team have no 'consulted' count)."""
    start, end = await default_range(session, start, end)
    return {group: [FunnelStep(**step) for step in steps]
            for group, steps in (await funnel(session, start, end, group_by)).items()}
