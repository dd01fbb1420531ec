"""Anomalies per category, top-level category, channel and in total, against a seasonal baseline.

Each series is the hourly count of feedback items (and of negative items). Its baseline is an STL
decomposition (statsmodels) with a period of 168 hours, so it knows both the hour of the day and the day
of the week, fitted twice: the hours far above the first fit are left out of the second, so a spike does
not pull its own baseline up. A (UTC) day is anomalous when its
count exceeds the baseline by `z` standard deviations (the larger of Poisson noise and the residual
spread), by `min_increase` relatively and by `min_excess` items.

One anomaly, one alert: when a category spikes, its top-level category, its channel and the total spike
with it. Candidates are taken from the most specific series to the broadest, and a broader one is kept only
if it is still anomalous once the excess of the anomalies it contains is taken out of it.
"""

import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import numpy as np
from sqlalchemy import CursorResult, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from statsmodels.tsa.seasonal import STL

from closedloop.events import AlertRaisedV1
from closedloop.pagination import KeysetPage, keyset_page
from insights.dimensions import TOTAL, day_of, hour_of
from insights.models import RaisedAnomaly, outbox
from insights.series import read_sums

log = logging.getLogger(__name__)

PERIOD_HOURS = 168
FAMILIES = ("category", "category_top", "channel", TOTAL)  # most specific first
SERIES_METRICS = ("items", "negative")
SPIKE_Z = 4.0  # hours this far above the first fit (Poisson z) do not shape the baseline


@dataclass(frozen=True)
class Sensitivity:
    z: float = 4.0
    min_increase: float = 0.3
    min_excess: float = 10.0
    history_days: int = 56


@dataclass
class Anomaly:
    dimension: str
    value: str
    window_start: datetime
    window_end: datetime
    observed: dict[str, float]
    expected: dict[str, float]
    z: dict[str, float]
    spread: dict[str, float] = field(default_factory=dict)  # residual spread per hour, per metric
    own_excess: dict[str, float] = field(default_factory=dict)  # excess not explained by a narrower anomaly

    @property
    def key(self) -> str:
        return f"{self.dimension}={self.value}|{self.window_start.date().isoformat()}"

    @property
    def label(self) -> str:
        return "all feedback" if self.dimension == TOTAL else f"{self.dimension} {self.value}"

    def excess(self, metric: str) -> float:
        return max(self.observed.get(metric, 0.0) - self.expected.get(metric, 0.0), 0.0)


def _stl_expected(counts: np.ndarray) -> np.ndarray:
    # LOESS evaluated at every 24th point of the (long) trend and low-pass windows and interpolated between:
    # 16x less work on this machine for a baseline within 0.03 of the exact one. The seasonal smoother,
    # with one point per week, is evaluated everywhere.
    fit = STL(counts, period=PERIOD_HOURS, seasonal_jump=1, trend_jump=24, low_pass_jump=24).fit()
    return np.clip(fit.trend + fit.seasonal, 0.0, None)


def baseline(counts: np.ndarray) -> tuple[np.ndarray, float]:
    """Expected count per hour (trend + hour-of-week seasonality) and the residual spread per hour.

    STL's own robust mode suits continuous data, not sparse counts: with a few items an hour most
    residuals are 0, so every hour that has an item looks like an outlier and the baseline sinks to 0.
    Instead: fit, replace the hours far above the fit on a Poisson scale (a spike) by what that hour of
    the week usually holds, fit again."""
    if counts.sum() == 0:
        return np.zeros_like(counts), 0.0
    cleaned, expected = counts, _stl_expected(counts)
    # What an hour of the week usually holds (median over the weeks): robust to a spike in one of them.
    positions = np.arange(len(counts)) % PERIOD_HOURS
    usual = np.array([np.median(counts[positions == p]) for p in range(PERIOD_HOURS)])[positions]
    for _ in range(3):  # a spike inflates the fit around it: set it aside until nothing more stands out
        spikes = (cleaned - expected) / np.sqrt(np.maximum(expected, 0.5)) > SPIKE_Z
        if not spikes.any():
            break
        cleaned = np.where(spikes, usual, cleaned)
        expected = _stl_expected(cleaned)
    residual = cleaned - expected
    spread = 1.4826 * float(np.median(np.abs(residual - np.median(residual))))
    return expected, spread


def judge(observed: float, expected: float, hours: int, spread: float, s: Sensitivity) -> float | None:
    """The z score when the window is anomalous, else None."""
    sd = math.sqrt(max(expected, hours * spread * spread, 1.0))
    z = (observed - expected) / sd
    if z >= s.z and observed >= expected * (1 + s.min_increase) and observed - expected >= s.min_excess:
        return z
    return None


async def hourly_counts(session: AsyncSession, dimension: str, start: datetime, end: datetime
                        ) -> dict[str, dict[str, np.ndarray]]:
    """value -> metric -> hourly counts over [start, end) (dense, zeros where nothing came)."""
    hours = int((end - start).total_seconds() // 3600)
    rows = await read_sums(session, set(SERIES_METRICS), "h", dimension, "", start, end)
    out: dict[str, dict[str, np.ndarray]] = {}
    for bucket, v1, _, metric, amount in rows:
        if bucket.tzinfo is None:
            bucket = bucket.replace(tzinfo=UTC)
        index = int((bucket - start).total_seconds() // 3600)
        series = out.setdefault(v1 or TOTAL, {m: np.zeros(hours) for m in SERIES_METRICS})
        series[metric][index] += amount
    return out


async def find_anomalies(session: AsyncSession, start: datetime, end: datetime,
                         sensitivity: Sensitivity) -> list[Anomaly]:
    """Anomalous days in [start, end) (an unfinished last day is judged on its hours so far)."""
    start, end = day_of(start), hour_of(end)
    history_start = start - timedelta(days=sensitivity.history_days)
    hours = int((end - history_start).total_seconds() // 3600)
    if hours < 2 * PERIOD_HOURS:
        return []
    candidates: list[Anomaly] = []
    for family in FAMILIES:
        for value, metrics in (await hourly_counts(session, family, history_start, end)).items():
            fitted = {metric: baseline(counts) for metric, counts in metrics.items()}
            day = start
            while day < end:
                lo = int((day - history_start).total_seconds() // 3600)
                hi = min(lo + 24, hours)
                observed = {m: float(metrics[m][lo:hi].sum()) for m in SERIES_METRICS}
                expected = {m: float(fitted[m][0][lo:hi].sum()) for m in SERIES_METRICS}
                z = {m: judge(observed[m], expected[m], hi - lo, fitted[m][1], sensitivity) for m in SERIES_METRICS}
                if any(score is not None for score in z.values()):
                    candidates.append(Anomaly(
                        family, value, day, day + timedelta(hours=hi - lo), observed, expected,
                        {m: round(score, 2) for m, score in z.items() if score is not None},
                        spread={m: fitted[m][1] for m in SERIES_METRICS}))
                day += timedelta(days=1)
    return await explain_away(session, candidates, sensitivity)


async def category_channel_shares(session: AsyncSession, day: datetime) -> dict[tuple[str, str], float]:
    """(category, channel) -> share of the category's items that came through the channel that day."""
    rows = await read_sums(session, {"items"}, "d", "category", "channel", day, day + timedelta(days=1))
    totals: dict[str, float] = {}
    for _, category, _, _, amount in rows:
        totals[category] = totals.get(category, 0.0) + amount
    return {(category, channel): amount / totals[category]
            for _, category, channel, _, amount in rows if totals.get(category)}


def contains(broad: Anomaly, specific: Anomaly, shares: dict[tuple[str, str], float]) -> float:
    """Which fraction of `specific`'s items are also in `broad` (0 when unrelated)."""
    if broad.dimension == TOTAL:
        return 1.0
    if broad.dimension == "category_top" and specific.dimension == "category":
        return 1.0 if specific.value.split("/", 1)[0] == broad.value else 0.0
    if broad.dimension == "channel" and specific.dimension == "category":
        return shares.get((specific.value, broad.value), 0.0)
    return 0.0


async def explain_away(session: AsyncSession, candidates: list[Anomaly], s: Sensitivity) -> list[Anomaly]:
    kept: list[Anomaly] = []
    shares_by_day: dict[datetime, dict[tuple[str, str], float]] = {}
    for candidate in candidates:  # already ordered most specific family first
        same_day = [a for a in kept if a.window_start == candidate.window_start]
        if candidate.window_start not in shares_by_day:
            shares_by_day[candidate.window_start] = await category_channel_shares(session, candidate.window_start)
        shares = shares_by_day[candidate.window_start]
        explained_by = []
        still: dict[str, float] = {}
        own: dict[str, float] = {}
        for metric in SERIES_METRICS:
            # What narrower anomalies of the day already account for (each counted by its own part only,
            # so a category inside a kept top level is not subtracted twice from the total).
            contained = 0.0
            for anomaly in same_day:
                fraction = contains(candidate, anomaly, shares)
                if fraction:
                    contained += fraction * anomaly.own_excess.get(metric, 0.0)
                    explained_by.append(anomaly.key)
            own[metric] = max(candidate.excess(metric) - contained, 0.0)
            hours = int((candidate.window_end - candidate.window_start).total_seconds() // 3600)
            z = judge(candidate.observed[metric] - contained, candidate.expected[metric], hours,
                      candidate.spread.get(metric, 0.0), s)
            if z is not None and metric in candidate.z:
                still[metric] = round(z, 2)
        if still:
            candidate.z, candidate.own_excess = still, own
            kept.append(candidate)
        elif explained_by:
            log.info("anomaly explained by a more specific one",
                     extra={"anomaly": candidate.key, "by": sorted(set(explained_by))})
    return kept


async def raise_anomalies(session: AsyncSession, anomalies: list[Anomaly], now: datetime) -> list[Anomaly]:
    """Record each anomaly under its key and announce it, once: a second replica (or a second scan of the
    same days) finds the key taken and raises nothing. Returns the ones raised now."""
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    raised = []
    for anomaly in anomalies:
        result = cast(CursorResult[Any], await session.execute(insert(RaisedAnomaly).values(
            key=anomaly.key, dimension=anomaly.dimension, value=anomaly.value,
            window_start=anomaly.window_start, window_end=anomaly.window_end, observed=anomaly.observed,
            expected={m: round(v, 2) for m, v in anomaly.expected.items()}, z=max(anomaly.z.values()),
            raised_at=now).on_conflict_do_nothing(index_elements=["key"])))
        if result.rowcount != 1:
            continue
        main = "items" if "items" in anomaly.z else "negative"
        observed, expected = anomaly.observed[main], anomaly.expected[main]
        what = "feedback items" if main == "items" else "negative feedback items"
        ratio = observed / expected if expected else math.inf
        outbox.add(session, AlertRaisedV1(
            kind="insights.anomaly", severity="critical" if ratio >= 2 else "warning",
            message=(f"{what.capitalize()} for {anomaly.label} on {anomaly.window_start.date().isoformat()}: "
                     f"{observed:.0f} observed, {expected:.1f} expected"),
            metrics={"observed": observed, "expected": round(expected, 2), "z": max(anomaly.z.values()),
                     **{f"{m}_observed": anomaly.observed[m] for m in SERIES_METRICS},
                     **{f"{m}_expected": round(anomaly.expected[m], 2) for m in SERIES_METRICS}},
            dimension={} if anomaly.dimension == TOTAL else {anomaly.dimension: anomaly.value},
            window_start=anomaly.window_start, window_end=anomaly.window_end,
        ))
        raised.append(anomaly)
    return raised


async def raised_anomalies(session: AsyncSession, limit: int, cursor: str | None) -> KeysetPage[RaisedAnomaly]:
    """Latest window first (ties by key, also descending: one direction keeps the keyset cursor simple)."""
    return await keyset_page(session, select(RaisedAnomaly), order=(RaisedAnomaly.window_start, RaisedAnomaly.key),
                             limit=limit, cursor=cursor)

