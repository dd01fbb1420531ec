"""Anomalies, forecasts, drivers, segments, churn risk and opportunities."""

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from time import monotonic
from typing import Annotated, Any, Literal

from fastapi import Query
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.api import SessionDep, api_router
from closedloop.auth import needs
from closedloop.errors import NotFound, field_problem, problem_responses
from closedloop.pagination import Cursor
from insights import analysis
from insights.anomalies import raised_anomalies
from insights.api.deps import ForecastCacheDep, SettingsDep
from insights.config import current_config
from insights.dimensions import day_of
from insights.drivers import drivers
from insights.forecast import fit_teams, overall_error, team_histories
from insights.opportunities import find_opportunities
from insights.schemas.analyses import MAX_SCAN_DAYS, AnomalyPage, AnomalyPublic, AnomalyScanIn, AnomalyScanResult
from insights.segments import find_churn_risks, score_customers, segment_summaries
from insights.series import default_range, watermark

router = api_router("analyses")
FORECAST_CACHE_SECONDS = 300.0


async def as_of_or_latest(session: AsyncSession, as_of: datetime | None) -> datetime:
    if as_of is not None:
        return as_of
    latest = await watermark(session)
    return latest + timedelta(hours=1) if latest else datetime.now(UTC)


@router.get("/anomalies", dependencies=needs("reports:read"),
            response_model=AnomalyPage, summary="Anomalies raised, latest window first")
async def list_anomalies(session: SessionDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                         cursor: Cursor = None) -> AnomalyPage:
    page = await raised_anomalies(session, limit, cursor)
    return AnomalyPage(items=[AnomalyPublic(key=a.key, dimension=a.dimension, value=a.value,
                                            window_start=a.window_start, window_end=a.window_end,
                                            observed=a.observed, expected=a.expected, z=a.z, raised_at=a.raised_at)
                              for a in page.rows], total=page.total, next_cursor=page.next_cursor)


@router.post("/anomalies/scan", dependencies=needs("config:write"), responses=problem_responses(422),
             response_model=AnomalyScanResult, summary="Look for anomalies and raise them")
async def scan_anomalies(body: AnomalyScanIn, settings: SettingsDep, session: SessionDep) -> AnomalyScanResult:
    """Judges each day in the range against its seasonal baseline, per category, top-level category,
    channel and in total; raises `alert.raised.v1` once per anomaly (a rescan raises nothing again)."""
    async with session.begin():
        as_of = await as_of_or_latest(session, None)
        start = body.start or day_of(as_of) - timedelta(days=1)
        end = body.end or as_of
        if end - start > timedelta(days=MAX_SCAN_DAYS):
            field = "body.end" if body.end is not None else "body.start"
            raise field_problem(field, f"a scan covers at most {MAX_SCAN_DAYS} days (from {start.date()} to "
                                       f"{end.date()} asked); scan a longer range in pieces")
        found, raised = await analysis.scan_anomalies(session, settings, start, end,
                                                      datetime.now(UTC))
    return AnomalyScanResult(
        found=[AnomalyPublic(key=a.key, dimension=a.dimension, value=a.value, window_start=a.window_start,
                             window_end=a.window_end, observed=a.observed,
                             expected={m: round(v, 2) for m, v in a.expected.items()}, z=a.z) for a in found],
        raised=[a.key for a in raised])


@router.get("/forecast", dependencies=needs("reports:read"),
            summary="Tickets and negative tickets per team for the next days, with the backtest")
async def get_forecast(settings: SettingsDep, session: SessionDep, cache: ForecastCacheDep,
                       as_of: datetime | None = None,
                       horizon: Annotated[int, Query(ge=1, le=28)] = 7,
                       backtest_weeks: Annotated[int, Query(ge=0, le=12)] = 4,
                       level: Annotated[float, Query(gt=0.5, lt=1)] = 0.9) -> dict[str, Any]:
    """Per team: daily forecast with a `level` prediction interval, the week's total, the agent-hours it
    implies (measured replies per ticket x configured minutes per reply), and the error of the same model's
    forecasts for each of the last `backtest_weeks` weeks (MAE per day, MAPE of the week, interval coverage)."""
    as_of = await as_of_or_latest(session, as_of)
    minutes = settings.minutes_per_reply
    # The same forecast is asked for by every dashboard and insights page load, and it takes seconds to fit:
    # kept per app for FORECAST_CACHE_SECONDS, keyed by everything it depends on ("as of" moves with the data;
    # the time bound covers late events of past days, e.g. replies, which count in the ticket's creation hour).
    key = (as_of, horizon, backtest_weeks, level, minutes)
    hit = cache.get(key)
    if hit is not None and hit[0] > monotonic():
        return hit[1]
    teams, end = await team_histories(session, as_of)
    # The read is done: its connection goes back to the pool before the fits (on SQLite it is the writers' only
    # one; held through a 30 s fit, every other request and the consumers waited for it).
    await session.rollback()
    forecasts = await fit_teams(teams, end, horizon=horizon, backtest_weeks=backtest_weeks, level=level,
                                minutes_per_reply=minutes)
    answer = {"as_of": as_of, "level": level, "minutes_per_reply": minutes,
              "backtest_error": overall_error(forecasts), "teams": [asdict(f) for f in forecasts]}
    for stale in [k for k, (expires, _) in cache.items() if expires <= monotonic()]:
        del cache[stale]
    cache[key] = (monotonic() + FORECAST_CACHE_SECONDS, answer)
    return answer


@router.get("/drivers", dependencies=needs("reports:read"),
            summary="What goes with low ratings or reopened tickets, with confidence intervals")
async def get_drivers(session: SessionDep, outcome: Literal["low_rating", "reopened"] = "low_rating",
                      start: datetime | None = None, end: datetime | None = None,
                      wait_threshold_minutes: Annotated[float, Query(gt=0)] = 60.0,
                      low_rating_max: Annotated[int, Query(ge=1, le=4)] = 2) -> dict[str, Any]:
    """For each factor: risk of the outcome with and without it, the risk difference with a 95% interval,
    the odds ratio with its interval, and the odds ratio adjusted for the other factors (logistic
    regression). Tickets created in [start, end) (default: the 90 days up to the latest data)."""
    start, end = await default_range(session, start, end)
    n, rate, effects = await drivers(session, outcome, start, end, wait_threshold_minutes, low_rating_max)
    return {"outcome": outcome, "tickets": n, "outcome_rate": rate, "start": start, "end": end,
            "effects": [asdict(e) for e in effects]}


@router.get("/segments", dependencies=needs("reports:read"),
            summary="RFM segments: size, value, negative share and top needs")
async def get_segments(session: SessionDep, as_of: datetime | None = None) -> dict[str, Any]:
    as_of = await as_of_or_latest(session, as_of)
    return {"as_of": as_of, "segments": [asdict(s) for s in await segment_summaries(session, as_of)]}


@router.get("/customers/{customer_id}/rfm", dependencies=needs("reports:read"),
            summary="One customer's RFM scores and segment",
            responses=problem_responses(404))
async def get_customer_rfm(customer_id: str, session: SessionDep, as_of: datetime | None = None) -> dict[str, Any]:
    as_of = await as_of_or_latest(session, as_of)
    for score in await score_customers(session, as_of):
        if score.customer_id == customer_id:
            return asdict(score)
    raise NotFound("Customer", customer_id)


@router.get("/churn-risks", dependencies=needs("reports:read"),
            summary="Valuable customers at risk of leaving (as of the latest data)")
async def get_churn_risks(settings: SettingsDep, session: SessionDep, as_of: datetime | None = None) -> dict[str, Any]:
    as_of = await as_of_or_latest(session, as_of)
    config = await current_config(session, settings)
    risks = await find_churn_risks(session, as_of, min_value=config.churn_min_value,
                                   negative_contacts=config.churn_negative_contacts,
                                   window_days=config.churn_window_days)
    return {"as_of": as_of, "customers": [asdict(r) for r in risks]}


@router.post("/churn-risks/scan", dependencies=needs("config:write"),
             summary="Find churn risks and raise customer.churn_risk_detected.v1")
async def scan_churn_risks(settings: SettingsDep, session: SessionDep) -> dict[str, Any]:
    """Once per customer and week: a second scan within the week raises nothing again."""
    async with session.begin():
        as_of = await as_of_or_latest(session, None)
        risks, raised = await analysis.scan_churn(session, settings, as_of, datetime.now(UTC))
    return {"as_of": as_of, "found": [r.customer_id for r in risks], "raised": [r.customer_id for r in raised]}


@router.get("/opportunities", dependencies=needs("reports:read"),
            summary="Feature requests and unmet needs clustered into opportunities")
async def get_opportunities(settings: SettingsDep, session: SessionDep, as_of: datetime | None = None,
                            days: Annotated[int, Query(ge=7, le=365)] = 90) -> dict[str, Any]:
    as_of = await as_of_or_latest(session, as_of)
    found = await find_opportunities(session, as_of, days=days,
                                     min_mentions=settings.opportunity_min_mentions)
    return {"as_of": as_of, "opportunities": [asdict(o) for o in found]}


@router.post("/opportunities/scan", dependencies=needs("config:write"),
             summary="Find opportunities and raise opportunity.detected.v1")
async def scan_opportunities(settings: SettingsDep, session: SessionDep) -> dict[str, Any]:
    async with session.begin():
        as_of = await as_of_or_latest(session, None)
        found, raised = await analysis.scan_opportunities(session, settings, as_of,
                                                          datetime.now(UTC))
    return {"as_of": as_of, "found": [o.title for o in found], "raised": [o.title for o in raised]}
