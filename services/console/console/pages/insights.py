"""The lead view's charts from the insights service: weekly volume and negative feedback, next week's
tickets per team with the backtest error beside it, and what goes with low ratings. Registered into the
dashboards' chart list, so each gets its table of numbers, its CSV and the browser test's number check."""

from console.i18n import _
from console.pages.dashboards import Chart, ChartData, register
from console.upstream import UserApi


async def _weekly_volume(api: UserApi) -> ChartData:
    trends = await api.get("insights", "/v1/trends", metric=["volume", "negative_volume"], interval="week")
    weeks = sorted({p["period"][:10] for p in trends["points"]})
    value = {(p["period"][:10], p["metric"]): p["value"] for p in trends["points"]}
    anomalies = (await api.get("insights", "/v1/anomalies", limit=5))["items"]
    notes = [_("Anomaly on %(day)s: %(what)s %(value)s, %(observed)s items (%(expected)s expected)",
               day=a["window_start"][:10], what=a["dimension"], value=a["value"],
               observed=int(a["observed"].get("items", 0)), expected=round(a["expected"].get("items", 0), 1))
             for a in anomalies]
    return ChartData(weeks, [(_("Feedback"), [value.get((w, "volume"), 0) for w in weeks]),
                             (_("Negative"), [value.get((w, "negative_volume"), 0) for w in weeks])],
                     kind="line", notes=notes)


async def _forecast(api: UserApi) -> ChartData:
    forecast = await api.get("insights", "/v1/forecast")
    rows = [f for f in forecast["teams"] if f["metric"] == "tickets"]
    error = forecast["backtest_error"].get("wape")
    shown = "—" if error is None else f"{error:.0%}"
    notes = [_("Backtest error of the last weeks' forecasts (WAPE): %(error)s", error=shown)]
    return ChartData([r["team"] for r in rows],
                     [(_("Tickets, next 7 days"), [r["total"] for r in rows]),
                      (_("Agent-hours"), [r["agent_hours"] for r in rows])], notes=notes)


async def _drivers(api: UserApi) -> ChartData:
    drivers = await api.get("insights", "/v1/drivers", outcome="low_rating")
    effects = drivers["effects"][:8]
    notes = [f"{e['factor']}: {e['risk_difference']:+.2f} [{e['risk_difference_ci'][0]:+.2f}, "
             f"{e['risk_difference_ci'][1]:+.2f}]" for e in effects]
    return ChartData([e["factor"] for e in effects],
                     [(_("Low ratings with it"), [e["risk_exposed"] for e in effects]),
                      (_("Low ratings without it"), [e["risk_unexposed"] for e in effects])], notes=notes)


register(Chart("insights-weekly-volume", lambda: _("Feedback and negative feedback per week"), _weekly_volume))
register(Chart("insights-forecast", lambda: _("Forecast: tickets per team next week, and the agent-hours"),
               _forecast))
register(Chart("insights-drivers", lambda: _("What goes with low ratings (1-2)"), _drivers))
