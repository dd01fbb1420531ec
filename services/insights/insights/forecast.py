"""Next week's tickets and negative tickets per team, with intervals, the agent-hours they imply, and a
backtest: the same model refitted as of each of the last weeks, its forecast compared with what came.

The model is statsmodels' ETS with additive errors and a 7-day additive seasonality (weekday pattern),
fitted on the team's daily series; intervals are the model's own prediction intervals (clipped at 0).
Agent-hours are the forecast tickets x the team's measured agent replies per ticket (last 28 days, from
`ticket.replied.v1`) x the configured minutes per reply (no event says how long an agent worked on one).
"""


import asyncio
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy.ext.asyncio import AsyncSession
from statsmodels.tsa.exponential_smoothing.ets import ETSModel

from insights.dimensions import day_of
from insights.series import read_sums

METRICS = {"tickets": "tickets", "negative_tickets": "tickets_negative"}
MIN_DAYS = 21


@dataclass
class DayForecast:
    day: str
    mean: float
    lower: float
    upper: float


@dataclass
class Backtest:
    weeks: int
    mae: float  # mean absolute error per day
    mape: float | None  # mean absolute percentage error of the weekly totals
    coverage: float  # share of actual days inside the interval
    weekly: list[dict] = field(default_factory=list)  # per backtested week: start, forecast, actual


@dataclass
class TeamForecast:
    team: str
    metric: str
    history_days: int
    days: list[DayForecast]
    total: float
    backtest: Backtest | None
    agent_hours: float | None = None


def fit_forecast(history: np.ndarray, horizon: int, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter on short or flat series
        if np.allclose(history, history[0]):
            flat = np.full(horizon, float(history[0]))
            return flat, flat, flat
        # A dated series: statsmodels' prediction results need an index (a bare array fails in 0.15).
        series = pd.Series(history.astype(float), index=pd.date_range("2000-01-03", periods=len(history), freq="D"))
        model = ETSModel(series, error="add", trend=None, seasonal="add", seasonal_periods=7)
        fitted = model.fit(disp=False, maxiter=200)
        frame = fitted.get_prediction(start=len(history), end=len(history) + horizon - 1).summary_frame(
            alpha=1 - level)
    mean = np.clip(frame["mean"].to_numpy(), 0, None)
    return mean, np.clip(frame["pi_lower"].to_numpy(), 0, None), np.clip(frame["pi_upper"].to_numpy(), 0, None)


def backtest(series: np.ndarray, weeks: int, level: float) -> Backtest | None:
    errors, inside, weekly, percentage = [], 0, [], []
    done = 0
    for k in range(weeks, 0, -1):
        cut = len(series) - 7 * k
        if cut < MIN_DAYS:
            continue
        mean, lower, upper = fit_forecast(series[:cut], 7, level)
        actual = series[cut:cut + 7]
        errors.extend(np.abs(mean - actual))
        inside += int(np.sum((actual >= lower) & (actual <= upper)))
        forecast_total, actual_total = float(mean.sum()), float(actual.sum())
        if actual_total:
            percentage.append(abs(forecast_total - actual_total) / actual_total)
        weekly.append({"week_index": -k, "forecast": round(forecast_total, 1), "actual": actual_total})
        done += 1
    if not done:
        return None
    return Backtest(weeks=done, mae=round(float(np.mean(errors)), 3),
                    mape=round(float(np.mean(percentage)), 4) if percentage else None,
                    coverage=round(inside / (7 * done), 3), weekly=weekly)


async def team_series(session: AsyncSession, raw: set[str], start: datetime, end: datetime
                      ) -> dict[str, dict[str, np.ndarray]]:
    days = (end - start).days
    out: dict[str, dict[str, np.ndarray]] = {}
    for bucket, team, _, metric, amount in await read_sums(session, raw, "d", "team", "", start, end):
        index = (day_of(bucket.replace(tzinfo=start.tzinfo)) - start).days
        if 0 <= index < days:
            out.setdefault(team, {m: np.zeros(days) for m in raw})[metric][index] += amount
    return out


async def forecast_teams(session: AsyncSession, as_of: datetime, *, horizon: int = 7, history_days: int = 84,
                         backtest_weeks: int = 4, level: float = 0.9, minutes_per_reply: float = 6.0
                         ) -> list[TeamForecast]:
    """Forecast the days after `as_of`'s day (the last complete day is the one before it)."""
    teams, end = await team_histories(session, as_of, history_days)
    return await fit_teams(teams, end, horizon=horizon, backtest_weeks=backtest_weeks, level=level,
                           minutes_per_reply=minutes_per_reply)


async def team_histories(session: AsyncSession, as_of: datetime, history_days: int = 84
                         ) -> tuple[dict[str, dict[str, np.ndarray]], datetime]:
    """Each team's daily series up to `as_of`'s day (excluded), and that day."""
    end = day_of(as_of)
    raw = {*METRICS.values(), "agent_replies"}
    return await team_series(session, raw, end - timedelta(days=history_days), end), end


async def fit_teams(teams: dict[str, dict[str, np.ndarray]], end: datetime, *, horizon: int = 7,
                    backtest_weeks: int = 4, level: float = 0.9, minutes_per_reply: float = 6.0
                    ) -> list[TeamForecast]:
    """The fits take seconds (tens on a busy machine): in a thread, so the service keeps answering meanwhile
    (its caller should not hold a database connection across it: see the forecast route)."""
    return await asyncio.to_thread(_fit_teams, teams, end, horizon, backtest_weeks, level, minutes_per_reply)


def _fit_teams(teams: dict[str, dict[str, np.ndarray]], end: datetime, horizon: int, backtest_weeks: int,
               level: float, minutes_per_reply: float) -> list[TeamForecast]:
    results = []
    for team, series in sorted(teams.items()):
        recent_tickets = series["tickets"][-28:].sum()
        replies_per_ticket = float(series["agent_replies"][-28:].sum() / recent_tickets) if recent_tickets else 0.0
        hours_per_ticket = replies_per_ticket * minutes_per_reply / 60
        first = int(np.argmax(series["tickets"] > 0)) if series["tickets"].any() else len(series["tickets"])
        for name, metric in METRICS.items():
            history = series[metric][first:]
            if len(history) < MIN_DAYS:
                continue
            mean, lower, upper = fit_forecast(history, horizon, level)
            days = [DayForecast((end + timedelta(days=i)).date().isoformat(), round(float(m), 2),
                                round(float(lo), 2), round(float(hi), 2))
                    for i, (m, lo, hi) in enumerate(zip(mean, lower, upper, strict=True))]
            total = float(mean.sum())
            results.append(TeamForecast(
                team=team, metric=name, history_days=len(history), days=days, total=round(total, 1),
                backtest=backtest(history, backtest_weeks, level),
                agent_hours=round(float(total * hours_per_ticket), 1) if name == "tickets" else None))
    return results


def overall_error(forecasts: list[TeamForecast]) -> dict[str, float | None]:
    """Backtest error over all teams: weighted by volume, the figure shown beside the forecast."""
    weeks = [(w["forecast"], w["actual"]) for f in forecasts if f.backtest for w in f.backtest.weekly
             if f.metric == "tickets"]
    actual = sum(a for _, a in weeks)
    if not weeks or not actual:
        return {"wape": None}
    return {"wape": round(sum(abs(f - a) for f, a in weeks) / actual, 4),
            "weeks": float(max((f.backtest.weeks for f in forecasts if f.backtest), default=0))}



