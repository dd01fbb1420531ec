"""The insights section: the screens an analyst works in (trends explorer with filters, grouping and
drill-down; anomalies; forecast per team; drivers of low ratings; the funnel; customer segments and churn
risks; opportunities), each built from the insights service's API with the user's credentials.

Every view is its query string (GET forms, htmx swaps that push the URL), so a view can be bookmarked and
shared. Analysts, leads and admins only (`needs_insights`); agents get 403 here, on the server.

Sums in the read model are kept per UTC day, so periods (days, weeks, months) and the date range are UTC
days; moments (when data was last seen, an anomaly's window, when it was raised) are shown in the user's
time zone."""

import asyncio
import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from console.i18n import _, parse_time
from console.upstream import UpstreamError, UserApi
from console.web import User, needs_insights, render

router = APIRouter(tags=["console: insights"], include_in_schema=False)
InsightsUser = Annotated[User, needs_insights()]

# The read model's dimensions, in the order the filter form shows them.
DIMENSIONS = ("channel", "category_top", "category", "team", "agent", "language", "tier", "region", "product")
# Known from tickets, not from the feedback item: their picker lists values by tickets.
TICKET_DIMENSIONS = frozenset({"team", "agent"})
INTERVALS = ("day", "week", "month")
# More lines than this make a chart nobody can read; the rest are one filter away (the note says so).
MAX_GROUPS = 10

DIMENSION_LABELS: dict[str, Callable[[], str]] = {
    "channel": lambda: _("Channel"), "category_top": lambda: _("Category (top level)"),
    "category": lambda: _("Category"), "team": lambda: _("Team"), "agent": lambda: _("Agent"),
    "language": lambda: _("Language"), "tier": lambda: _("Customer tier"), "region": lambda: _("Region"),
    "product": lambda: _("Product"), "all": lambda: _("All feedback"),
}
METRIC_LABELS: dict[str, Callable[[], str]] = {
    "volume": lambda: _("Feedback volume"), "negative_volume": lambda: _("Negative feedback"),
    "negative_share": lambda: _("Negative share"), "sentiment": lambda: _("Sentiment (-1 to +1)"),
    "csat": lambda: _("CSAT (1-5)"), "low_rating_share": lambda: _("Low ratings (1-2) share"),
    "nps": lambda: _("NPS"), "first_response_minutes": lambda: _("First response (minutes)"),
    "resolution_hours": lambda: _("Resolution (hours)"), "repeat_contact_rate": lambda: _("Repeat-contact rate"),
    "tickets": lambda: _("Tickets"), "negative_tickets": lambda: _("Tickets from negative feedback"),
    "reopen_rate": lambda: _("Reopen rate"), "sla_breach_rate": lambda: _("SLA breach rate"),
    "reassignment_rate": lambda: _("Reassignment rate"), "deliveries": lambda: _("Notifications delivered"),
    "failed_deliveries": lambda: _("Notifications failed"),
}
INTERVAL_LABELS = {"day": lambda: _("Day"), "week": lambda: _("Week"), "month": lambda: _("Month")}
FUNNEL_LABELS = {"consulted": lambda: _("Consulted"), "ticket_opened": lambda: _("Ticket opened"),
                 "responded": lambda: _("Responded"), "resolved": lambda: _("Resolved"),
                 "rated": lambda: _("Rated"), "satisfied": lambda: _("Satisfied")}
SEGMENT_LABELS = {"high_value": lambda: _("High value"), "at_risk": lambda: _("At risk"),
                  "potential": lambda: _("Potential"), "new": lambda: _("New customers"),
                  "hibernating": lambda: _("Hibernating"), "regular": lambda: _("Regular")}


def _label(table: dict[str, Callable[[], str]], key: str) -> str:
    """The translated name of a known key; an unknown one (added to the API later) as the API spells it."""
    return table[key]() if key in table else key


def dimension_label(name: str) -> str:
    return _label(DIMENSION_LABELS, name)


def metric_label(name: str) -> str:
    return _label(METRIC_LABELS, name)


class BadQuery(Exception):
    """A query-string field the page cannot use: shown on the page (422) naming the field."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field, self.message = field_name, message


def _date(raw: str | None, name: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadQuery(name, _("write a date as YYYY-MM-DD")) from None


def _int(raw: str | None, name: str, default: int, low: int, high: int) -> int:
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadQuery(name, _("write a whole number")) from None
    if not low <= value <= high:
        raise BadQuery(name, _("between %(low)s and %(high)s", low=low, high=high))
    return value


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


@dataclass(frozen=True)
class TrendView:
    """One view of the trends explorer; `query()` is its shareable URL's query string."""

    metric: str = "volume"
    interval: str = "week"
    start: date | None = None
    end: date | None = None  # inclusive: the last day shown
    filters: dict[str, str] = field(default_factory=dict)
    group_by: str | None = None

    @classmethod
    def from_query(cls, query: Any) -> "TrendView":
        interval = query.get("interval") or "week"
        if interval not in INTERVALS:
            raise BadQuery("interval", _("one of %(choices)s", choices=", ".join(INTERVALS)))
        group_by = query.get("group_by") or None
        if group_by is not None and group_by not in DIMENSIONS:
            raise BadQuery("group_by", _("one of %(choices)s", choices=", ".join(DIMENSIONS)))
        start, end = _date(query.get("start"), "start"), _date(query.get("end"), "end")
        if start and end and start > end:
            raise BadQuery("start", _("the first day must not be after the last"))
        filters = {d: query[d] for d in DIMENSIONS if query.get(d)}
        return cls(query.get("metric") or "volume", interval, start, end, filters, group_by)

    def query(self, **changes: Any) -> str:
        view = replace(self, **changes)
        pairs = [("metric", view.metric), ("interval", view.interval)]
        pairs += [(name, value.isoformat()) for name, value in (("start", view.start), ("end", view.end)) if value]
        pairs += [(d, view.filters[d]) for d in DIMENSIONS if d in view.filters]
        if view.group_by:
            pairs.append(("group_by", view.group_by))
        return urlencode(pairs)

    def drill(self, group: str) -> str:
        """The view filtered to one group of this one (and no longer grouped by that dimension)."""
        assert self.group_by is not None
        return self.query(filters={**self.filters, self.group_by: group}, group_by=None)

    def without(self, dimension: str) -> str:
        return self.query(filters={d: v for d, v in self.filters.items() if d != dimension})

    def api_params(self) -> dict[str, Any]:
        return {"metric": self.metric, "interval": self.interval,
                "start": _day_start(self.start).isoformat() if self.start else None,
                "end": _day_start(self.end + timedelta(days=1)).isoformat() if self.end else None,
                "group_by": self.group_by, "filter": [f"{d}:{v}" for d, v in self.filters.items()] or None}


def period_label(period: str, interval: str) -> str:
    return period[:7] if interval == "month" else period[:10]


@dataclass
class Chart:
    """What the page's canvas draws and its table lists: the same numbers (the browser test compares them)."""

    key: str
    kind: str
    labels: list[str]
    series: list[tuple[str, list[Any]]]
    styles: list[dict[str, Any]] | None = None  # per series: Chart.js dataset options (fill, type, dash)
    links: list[str] | None = None  # per series: where a click on it goes (drill-down)
    horizontal: bool = False
    stacked: bool = False

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "labels": self.labels, "series": self.series, "styles": self.styles,
                "links": self.links, "horizontal": self.horizontal, "stacked": self.stacked}


@dataclass
class TrendResult:
    chart: Chart
    groups: list[str]
    all_groups: int
    start: str
    end: str
    ratio: bool


def trend_result(answer: dict[str, Any], view: TrendView, ratio: bool) -> TrendResult:
    points = answer["points"]
    periods = sorted({p["period"] for p in points})
    weight: dict[str, float] = {}
    value: dict[tuple[str, str], Any] = {}
    for p in points:
        weight[p["group"]] = weight.get(p["group"], 0.0) + (p["denominator"] or p["numerator"] or 0.0)
        value[(p["period"], p["group"])] = p["value"]
    groups = sorted(weight, key=lambda g: (-weight[g], g))
    shown = groups[:MAX_GROUPS]
    # A period without a row had nothing to count: 0 for counts, no value for a ratio (0 / 0).
    missing = None if ratio else 0
    series = [(g if view.group_by else metric_label(view.metric),
               [value.get((period, g), missing) for period in periods]) for g in shown]
    links = ["?" + view.drill(g) for g in shown] if view.group_by else None
    chart = Chart("trend", "line", [period_label(p, view.interval) for p in periods], series, links=links)
    return TrendResult(chart, shown, len(groups), answer["start"], answer["end"], ratio)


async def _status(api: UserApi) -> dict[str, Any] | str:
    """The read model's freshness, shown on every page of the section (an error there is not fatal)."""
    try:
        return await api.get("insights", "/v1/status")
    except UpstreamError as exc:
        return exc.detail


async def _dimension_values(api: UserApi, dimension: str, view: TrendView) -> list[str]:
    params = view.api_params()
    try:
        rows = await api.get("insights", f"/v1/dimensions/{dimension}/values", start=params["start"],
                             end=params["end"], metric="tickets" if dimension in TICKET_DIMENSIONS else "items",
                             limit=200)
    except UpstreamError:
        return []
    return [row["value"] for row in rows]


def _page(request: Request, template: str, user: User, status: dict[str, Any] | str, section: str,
          status_code: int = 200, **context: Any) -> Response:
    return render(request, template, user, status_code=status_code, status=status, section=section,
                  sections=SECTIONS, dimension_label=dimension_label, metric_label=metric_label,
                  **context)


SECTIONS = (("trends", lambda: _("Trends")), ("anomalies", lambda: _("Anomalies")),
            ("forecast", lambda: _("Forecast")), ("drivers", lambda: _("Drivers")),
            ("funnel", lambda: _("Funnel")), ("customers", lambda: _("Segments and churn risk")),
            ("opportunities", lambda: _("Opportunities")))


@router.get("/insights")
async def insights_home(user: InsightsUser) -> Response:
    return RedirectResponse("/insights/trends", status_code=303)


async def _trend(api: UserApi, view: TrendView, ratio: bool) -> TrendResult:
    return trend_result(await api.get("insights", "/v1/trends", **view.api_params()), view, ratio)


@router.get("/insights/trends")
async def trends_page(request: Request, user: InsightsUser) -> Response:
    api = user.api.for_one_page()
    problem: BadQuery | None = None
    try:
        view = TrendView.from_query(request.query_params)
    except BadQuery as exc:
        problem, view = exc, TrendView()
    metrics, status, *values = await asyncio.gather(
        api.get("insights", "/v1/metrics"), _status(api), *(_dimension_values(api, d, view) for d in DIMENSIONS))
    ratios = {m["name"]: m["ratio"] for m in metrics}
    if problem is None and view.metric not in ratios:
        problem = BadQuery("metric", _("one of %(choices)s", choices=", ".join(ratios)))
    result = None
    if problem is None:
        try:
            result = await _trend(api, view, ratios[view.metric])
        except UpstreamError as exc:
            if exc.status != 422:
                raise
            problem = BadQuery(str((exc.problem.get("errors") or [{}])[0].get("field") or "query"), exc.detail)
    choices = {d: v if view.filters.get(d) in (None, *v) else [view.filters[d], *v]
               for d, v in zip(DIMENSIONS, values, strict=True)}
    return _page(request, "insights/trends.html", user, status, "trends", status_code=422 if problem else 200,
                 view=view, metrics=metrics, result=result, problem=problem, choices=choices,
                 dimensions=DIMENSIONS, intervals=[(i, INTERVAL_LABELS[i]()) for i in INTERVALS],
                 interval_label=INTERVAL_LABELS[view.interval](), csv_url="/insights/trends.csv?" + view.query())


@router.get("/insights/trends.csv")
async def trends_csv(request: Request, user: InsightsUser) -> Response:
    """Exactly the series the page shows (the same groups, periods and values)."""
    try:
        view = TrendView.from_query(request.query_params)
    except BadQuery as exc:
        return Response(f"{exc.field}: {exc.message}\n", status_code=422, media_type="text/plain")
    metrics = await user.api.get("insights", "/v1/metrics")
    ratios = {m["name"]: m["ratio"] for m in metrics}
    if view.metric not in ratios:
        return Response(f"metric: one of {', '.join(ratios)}\n", status_code=422, media_type="text/plain")
    result = await _trend(user.api, view, ratios[view.metric])
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["period", *[name for name, _values in result.chart.series]])
    for index, label in enumerate(result.chart.labels):
        writer.writerow([label, *["" if values[index] is None else values[index]
                                  for _name, values in result.chart.series]])
    name = f"{view.metric}-{view.interval}" + (f"-by-{view.group_by}" if view.group_by else "") + ".csv"
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def anomaly_link(anomaly: dict[str, Any]) -> str:
    """The daily trend around the anomaly, filtered to what was anomalous: four weeks before, one after."""
    first = parse_time(anomaly["window_start"])
    last = parse_time(anomaly["window_end"])
    assert first is not None and last is not None
    filters = {} if anomaly["dimension"] == "all" else {anomaly["dimension"]: anomaly["value"]}
    view = TrendView("volume", "day", first.date() - timedelta(days=28),
                     (last - timedelta(seconds=1)).date() + timedelta(days=7), filters)
    return "/insights/trends?" + view.query()


@router.get("/insights/anomalies")
async def anomalies_page(request: Request, user: InsightsUser) -> Response:
    api = user.api.for_one_page()
    anomalies, status = await asyncio.gather(api.get("insights", "/v1/anomalies", limit=200), _status(api))
    rows = [{**a, "link": anomaly_link(a)} for a in anomalies["items"]]
    return _page(request, "insights/anomalies.html", user, status, "anomalies", anomalies=rows)


def forecast_chart(team: dict[str, Any]) -> Chart:
    days = team["days"]
    # The bounds are a light band behind the forecast line (drawn after it: a higher `order`).
    band = {"pointRadius": 0, "borderWidth": 1, "borderDash": [4, 3], "order": 1,
            "borderColor": "rgba(31, 95, 168, 0.6)", "backgroundColor": "rgba(31, 95, 168, 0.15)"}
    return Chart(f"forecast-{team['team']}", "line", [d["day"][:10] for d in days],
                 [(_("Forecast"), [d["mean"] for d in days]), (_("Lower bound"), [d["lower"] for d in days]),
                  (_("Upper bound"), [d["upper"] for d in days])],
                 styles=[{"fill": False, "order": 0}, {**band, "fill": False}, {**band, "fill": "-1"}])


# The forecast is computed on request (ETS fits per team, refitted for each backtested week): seconds,
# tens of seconds on a busy machine, where every other call answers well within the usual timeout.
FORECAST_TIMEOUT_SECONDS = 120.0


@router.get("/insights/forecast")
async def forecast_page(request: Request, user: InsightsUser) -> Response:
    api = user.api.for_one_page()
    try:
        horizon = _int(request.query_params.get("horizon"), "horizon", 7, 1, 28)
        level = _int(request.query_params.get("level"), "level", 90, 60, 99)
    except BadQuery as exc:
        status = await _status(api)
        return _page(request, "insights/forecast.html", user, status, "forecast", status_code=422, problem=exc,
                     forecast=None, teams=[], horizon=7, level=90)
    forecast, status = await asyncio.gather(
        api.get("insights", "/v1/forecast", timeout=FORECAST_TIMEOUT_SECONDS, horizon=horizon, level=level / 100),
        _status(api))
    negative = {t["team"]: t for t in forecast["teams"] if t["metric"] == "negative_tickets"}
    teams = [{**t, "chart": forecast_chart(t), "negative": negative.get(t["team"])}
             for t in forecast["teams"] if t["metric"] == "tickets"]
    return _page(request, "insights/forecast.html", user, status, "forecast", forecast=forecast, teams=teams,
                 horizon=horizon, level=level, problem=None)


def forest_chart(effects: list[dict[str, Any]]) -> Chart:
    """Each factor's risk difference as a point on its 95% interval (a forest plot, horizontal)."""
    return Chart("drivers", "bar", [e["factor"] for e in effects],
                 [(_("95% interval"), [list(e["risk_difference_ci"]) for e in effects]),
                  (_("Risk difference"), [e["risk_difference"] for e in effects])],
                 styles=[{"barThickness": 6}, {"type": "line", "showLine": False, "pointRadius": 6,
                                                "pointStyle": "rectRot"}], horizontal=True)


@router.get("/insights/drivers")
async def drivers_page(request: Request, user: InsightsUser) -> Response:
    api = user.api.for_one_page()
    outcome = request.query_params.get("outcome") or "low_rating"
    problem = None
    if outcome not in ("low_rating", "reopened"):
        problem, outcome = BadQuery("outcome", _("one of %(choices)s", choices="low_rating, reopened")), "low_rating"
    try:
        wait = _int(request.query_params.get("wait"), "wait", 60, 1, 10_000)
    except BadQuery as exc:
        problem, wait = exc, 60
    drivers, status = await asyncio.gather(
        api.get("insights", "/v1/drivers", outcome=outcome, wait_threshold_minutes=wait), _status(api))
    return _page(request, "insights/drivers.html", user, status, "drivers", status_code=422 if problem else 200,
                 problem=problem, drivers=drivers, outcome=outcome, wait=wait,
                 chart=forest_chart(drivers["effects"]) if drivers["effects"] else None)


@router.get("/insights/funnel")
async def funnel_page(request: Request, user: InsightsUser) -> Response:
    api = user.api.for_one_page()
    group_by = request.query_params.get("group_by") or None
    problem = None
    if group_by is not None and group_by not in DIMENSIONS:
        problem, group_by = BadQuery("group_by", _("one of %(choices)s", choices=", ".join(DIMENSIONS))), None
    funnel, status = await asyncio.gather(api.get("insights", "/v1/funnel", group_by=group_by), _status(api))
    groups = sorted(funnel, key=lambda g: -(funnel[g][1]["count"] if len(funnel[g]) > 1 else 0))[:MAX_GROUPS]
    chart = None
    if groups:
        steps = [s["step"] for s in funnel[groups[0]]]
        chart = Chart("funnel", "bar", [_label(FUNNEL_LABELS, s) for s in steps],
                      [(g if group_by else _("All feedback"), [s["count"] for s in funnel[g]]) for g in groups])
    return _page(request, "insights/funnel.html", user, status, "funnel", status_code=422 if problem else 200,
                 problem=problem, funnel=funnel, groups=groups, group_by=group_by, chart=chart,
                 dimensions=DIMENSIONS, step_label=lambda s: _label(FUNNEL_LABELS, s))


@router.get("/insights/customers")
async def customers_page(request: Request, user: InsightsUser) -> Response:
    api = user.api.for_one_page()
    segments, risks, status = await asyncio.gather(
        api.get("insights", "/v1/segments"), api.get("insights", "/v1/churn-risks"), _status(api))
    rows = segments["segments"]
    chart = Chart("segments", "bar", [_label(SEGMENT_LABELS, s["segment"]) for s in rows],
                  [(_("Customers"), [s["customers"] for s in rows])]) if rows else None
    return _page(request, "insights/customers.html", user, status, "customers", segments=segments,
                 risks=risks, chart=chart, segment_label=lambda s: _label(SEGMENT_LABELS, s))


@router.get("/insights/opportunities")
async def opportunities_page(request: Request, user: InsightsUser) -> Response:
    api = user.api.for_one_page()
    try:
        days = _int(request.query_params.get("days"), "days", 90, 7, 365)
        problem = None
    except BadQuery as exc:
        days, problem = 90, exc
    found, status = await asyncio.gather(api.get("insights", "/v1/opportunities", days=days), _status(api))
    items = found["opportunities"]
    chart = Chart("opportunities", "bar", [o["title"] for o in items],
                  [(_("Mentions, last 28 days"), [o["recent"] for o in items]),
                   (_("The 28 days before"), [o["previous"] for o in items])]) if items else None
    return _page(request, "insights/opportunities.html", user, status, "opportunities",
                 status_code=422 if problem else 200, problem=problem, found=found, items=items, days=days,
                 chart=chart)
