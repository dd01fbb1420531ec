"""The dimensions of the read model and how one event's sums fan out over them.

Every contribution goes to the total (`all`), to each dimension it knows and to each pair of dimensions
(daily): one filter plus one grouping, or two filters, is then a lookup of pre-aggregated rows. Hourly
rows exist for volume and negative volume, for the total and single dimensions only, because the anomaly
baselines need hours and nothing else does; more would multiply the rows by 24 for no reader.
"""

from collections import defaultdict
from datetime import datetime, timedelta
from itertools import combinations

DIMENSIONS = ("channel", "category", "category_top", "team", "agent", "language", "tier", "region", "product")
TOTAL = "all"
UNKNOWN = "unknown"
# Hourly rows: only what the anomaly baselines read (volume and negative volume).
HOURLY_METRICS = frozenset({"items", "negative"})
# Not paired with other dimensions: an agent is one person; "agent x region" would multiply rows by the
# number of agents for a question nobody asks of a dashboard (agent efficiency is read per agent).
SINGLE_ONLY = frozenset({"agent"})

# The sums kept per row (one column each): counts, and sums and counts of what is averaged at read time.
RAW_METRICS = (
    "items", "negative", "neutral", "positive", "sentiment_sum", "repeat_contacts",
    "nps_n", "nps_promoters", "nps_detractors", "csat_sum", "csat_n", "csat_low",
    "tickets", "tickets_negative", "reassignments", "sla_breaches", "resolved", "resolution_sum_h", "resolution_n",
    "reopened", "agent_replies", "frt_sum_min", "frt_n", "rated", "rated_satisfied",
    "deliveries", "deliveries_failed",
)

# (grain, d1, d2, v1, v2, bucket) -> metric -> amount
DeltaKey = tuple[str, str, str, str, str, datetime]
Deltas = defaultdict[DeltaKey, defaultdict[str, float]]


def new_deltas() -> Deltas:
    return defaultdict(lambda: defaultdict(float))


def hour_of(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def day_of(at: datetime) -> datetime:
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


def week_of(at: datetime) -> datetime:
    day = day_of(at)
    return day - timedelta(days=day.weekday())


def month_of(at: datetime) -> datetime:
    return day_of(at).replace(day=1)


def clean_dims(dims: dict[str, str | None]) -> dict[str, str]:
    """Known dimensions only, values trimmed to the column size; a missing value is 'unknown'."""
    return {name: (str(value)[:200] if value not in (None, "") else UNKNOWN)
            for name, value in dims.items() if name in DIMENSIONS}


def fan_out(deltas: Deltas, at: datetime, dims: dict[str, str], metrics: dict[str, float]) -> None:
    hour, day = hour_of(at), day_of(at)
    singles = sorted(dims.items())
    pairs = list(combinations([(d, v) for d, v in singles if d not in SINGLE_ONLY], 2))
    for metric, amount in metrics.items():
        if not amount:
            continue
        hourly = metric in HOURLY_METRICS
        deltas[("d", TOTAL, "", "", "", day)][metric] += amount
        if hourly:
            deltas[("h", TOTAL, "", "", "", hour)][metric] += amount
        for name, value in singles:
            deltas[("d", name, "", value, "", day)][metric] += amount
            if hourly:
                deltas[("h", name, "", value, "", hour)][metric] += amount
        for (d1, v1), (d2, v2) in pairs:
            deltas[("d", d1, d2, v1, v2, day)][metric] += amount
