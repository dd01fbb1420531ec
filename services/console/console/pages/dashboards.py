"""The team-lead view: charts of the services' reports, each with its numbers as a table and as CSV.

A chart is a `Chart` in `CHARTS`: a key, a title and a loader that turns API answers into labels and
series. Adding a chart (e.g. from the analytics service) is adding one entry; the page, the table, the
CSV download and the browser test's number check all follow from it."""

import asyncio
import csv
import io
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response

from console.i18n import _
from console.upstream import UpstreamError, UserApi
from console.web import User, needs, render

router = APIRouter(tags=["console: dashboards"], include_in_schema=False)
ReportUser = Annotated[User, needs("reports:read")]


@dataclass
class ChartData:
    labels: list[str]
    series: list[tuple[str, list[float | int | None]]]
    kind: str = "bar"  # a Chart.js type: bar, line, doughnut
    stacked: bool = False
    unit: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Chart:
    key: str
    title: Callable[[], str]
    load: Callable[[UserApi], Awaitable[ChartData]]


async def _backlog_by_team(api: UserApi) -> ChartData:
    report = await api.get("ticketing", "/v1/reports/backlog")
    rows = report["by_team"]
    return ChartData([r["key"] for r in rows],
                     [(_("Within SLA"), [r["open_tickets"] - r["breached"] for r in rows]),
                      (_("Breached"), [r["breached"] for r in rows])], stacked=True)


async def _backlog_by_priority(api: UserApi) -> ChartData:
    report = await api.get("ticketing", "/v1/reports/backlog")
    rows = report["by_priority"]
    return ChartData([r["key"] for r in rows],
                     [(_("Within SLA"), [r["open_tickets"] - r["breached"] for r in rows]),
                      (_("Breached"), [r["breached"] for r in rows])], stacked=True)


async def _sla_compliance(api: UserApi) -> ChartData:
    report = await api.get("ticketing", "/v1/reports/sla-compliance")
    teams: dict[str, list[int]] = {}
    for row in report["rows"]:
        met_breached = teams.setdefault(row["team"], [0, 0])
        met_breached[0] += row["met"]
        met_breached[1] += row["breached"]
    labels = sorted(teams)
    share = "—" if report["overall"] is None else f"{report['overall']:.1%}"
    return ChartData(labels, [(_("Met"), [teams[t][0] for t in labels]),
                              (_("Breached"), [teams[t][1] for t in labels])], stacked=True,
                     notes=[_("Overall compliance: %(share)s", share=share)])


async def _response_times(api: UserApi) -> ChartData:
    report = await api.get("ticketing", "/v1/reports/response-times")
    rows = report["by_team"]
    return ChartData([r["team"] for r in rows],
                     [(_("First response, median (min)"), [r["first_response"]["median_minutes"] for r in rows]),
                      (_("Resolution, median (min)"), [r["resolution"]["median_minutes"] for r in rows])],
                     unit="min")


async def _csat(api: UserApi) -> ChartData:
    report = await api.get("ticketing", "/v1/reports/csat")
    labels = ["1", "2", "3", "4", "5"]
    average = "—" if report["average"] is None else f"{report['average']:.2f}"
    return ChartData(labels, [(_("Ratings"), [report["distribution"].get(k, 0) for k in labels])],
                     notes=[_("%(n)s ratings, average %(avg)s", n=report["responses"], avg=average)])


async def _top_issues(api: UserApi) -> ChartData:
    report = await api.get("ticketing", "/v1/reports/top-issues")
    items = report["items"]
    arrows = {"up": "↑", "down": "↓", "flat": "→", "new": "★"}
    notes = [f"{arrows.get(i['trend'], '')} {i['category_label'] or i['category']}: {i['count']} "
             f"({'+' if (i['change'] or 0) >= 0 else ''}{(i['change'] or 0):.0%})" if i["change"] is not None
             else f"{arrows.get(i['trend'], '')} {i['category_label'] or i['category']}: {i['count']} ({i['trend']})"
             for i in items]
    return ChartData([i["category"] for i in items],
                     [(_("This week"), [i["count"] for i in items]),
                      (_("Week before"), [i["previous_count"] for i in items])], notes=notes)


async def _spike_alerts(api: UserApi) -> ChartData:
    items = (await api.get("classify", "/v1/alerts"))["items"]
    days: dict[str, list[int]] = {}
    for alert in items:
        day = alert["created_at"][:10]
        counts = days.setdefault(day, [0, 0])
        counts[0 if alert["severity"] == "warning" else 1] += 1
    labels = sorted(days)
    notes = [f"{a['created_at'][:16].replace('T', ' ')} · {a['severity']} · {a['message']}" for a in items[:5]]
    return ChartData(labels, [(_("Warning"), [days[d][0] for d in labels]),
                              (_("Critical"), [days[d][1] for d in labels])], stacked=True, notes=notes)


async def _agent_load(api: UserApi) -> ChartData:
    agents = await api.get("ticketing", "/v1/agents")
    return ChartData([a["id"] for a in agents],
                     [(_("Active tickets"), [a["load"] for a in agents]),
                      (_("Capacity"), [a["capacity"] for a in agents])])


CHARTS: list[Chart] = [
    Chart("backlog-by-team", lambda: _("Backlog by team"), _backlog_by_team),
    Chart("backlog-by-priority", lambda: _("Backlog by priority"), _backlog_by_priority),
    Chart("sla-compliance", lambda: _("SLA targets met and breached, last 7 days"), _sla_compliance),
    Chart("response-times", lambda: _("First response and resolution times, last 7 days"), _response_times),
    Chart("csat", lambda: _("Customer satisfaction, last 7 days"), _csat),
    Chart("top-issues", lambda: _("Top issues of the week, with the week before"), _top_issues),
    Chart("spike-alerts", lambda: _("Spike alerts"), _spike_alerts),
    Chart("agent-load", lambda: _("Agent load"), _agent_load),
]


def register(chart: Chart) -> None:
    """For another module (e.g. analytics pages) to add a chart to the lead view."""
    CHARTS.append(chart)


async def _load(chart: Chart, api: UserApi) -> ChartData | str:
    try:
        return await chart.load(api)
    except UpstreamError as exc:
        return exc.detail


@router.get("/dashboards")
async def dashboards(request: Request, user: ReportUser) -> Response:
    api = user.api.for_one_page()
    loaded = await asyncio.gather(*(_load(chart, api) for chart in CHARTS))
    panels = [{"key": c.key, "title": c.title(), "data": d if isinstance(d, ChartData) else None,
               "error": d if isinstance(d, str) else None} for c, d in zip(CHARTS, loaded, strict=True)]
    return render(request, "dashboards.html", user, panels=panels)


def to_csv(data: ChartData) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["label", *[name for name, _values in data.series]])
    for index, label in enumerate(data.labels):
        writer.writerow([label, *["" if values[index] is None else values[index] for _n, values in data.series]])
    return out.getvalue()


@router.get("/dashboards/{key}.csv")
async def chart_csv(key: str, user: ReportUser) -> Response:
    chart = next((c for c in CHARTS if c.key == key), None)
    if chart is None:
        return Response("no such chart\n", status_code=404, media_type="text/plain")
    data = await chart.load(user.api)
    return Response(to_csv(data), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{key}.csv"'})
