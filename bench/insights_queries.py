"""`make bench` (insights part): dashboard queries at 100k and 1M feedback items.

The read model is filled with the sums those items would have produced: a vectorised loader (pandas
group-bys) applies the same fan-out as the consumers (`insights.dimensions.fan_out`: total, each
dimension, each pair, hourly volume) — checked equal to it on a sample first, because replaying a million
items through the consumers would take this machine hours. Then each query runs 5 times; the median is
printed with the number of aggregate rows it read. Figures are printed, never asserted.

    .venv/bin/python bench/insights_queries.py --sizes 100000 1000000
"""

import argparse
import asyncio
import statistics
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from closedloop.db import create_engine, run_migrations, session_factory
from insights.dimensions import HOURLY_METRICS, RAW_METRICS, SINGLE_ONLY, TOTAL, fan_out, new_deltas
from insights.models import Aggregate
from insights.segments import funnel
from insights.series import dimension_values, series
from insights.store import SQLITE_UPSERT

SERVICE_DIR = Path(__file__).resolve().parent.parent / "services" / "insights"
START = datetime(2025, 12, 1, tzinfo=UTC)
DAYS = 365
LEVELS = {
    "channel": ["web", "app", "email", "chat", "app_review", "survey", "api"],
    "category": [f"{top}/{leaf}" for top in ("billing", "account", "technical", "product", "orders", "security")
                 for leaf in ("a", "b", "c")],
    "language": ["en", "de", "pt", "es", "zh", "fr"],
    "tier": ["standard", "premium", "vip"],
    "region": ["emea", "amer", "apac"],
    "product": ["mobile-app", "web-app", "payments-api"],
}


def items(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.choice(values, n) for name, values in LEVELS.items()})
    frame["category_top"] = frame["category"].str.split("/").str[0]
    frame["at"] = START + pd.to_timedelta(rng.integers(0, DAYS * 24 * 3600, n), unit="s")
    negative = rng.random(n) < 0.35
    frame["items"] = 1.0
    frame["negative"] = negative.astype(float)
    frame["positive"] = (~negative & (rng.random(n) < 0.3)).astype(float)
    frame["neutral"] = 1.0 - frame["negative"] - frame["positive"]
    frame["sentiment_sum"] = np.where(negative, -0.8, np.where(frame["positive"] > 0, 0.8, 0.0))
    rated = rng.random(n) < 0.2
    frame["csat_n"] = rated.astype(float)
    frame["csat_sum"] = np.where(rated, rng.integers(1, 6, n), 0).astype(float)
    return frame


def sums(frame: pd.DataFrame) -> dict[tuple, dict[str, float]]:
    """The aggregate rows of these items, as the consumers' fan-out would write them."""
    metrics = [m for m in RAW_METRICS if m in frame.columns]
    hourly = [m for m in metrics if m in HOURLY_METRICS]
    frame = frame.assign(day=frame["at"].dt.floor("D"), hour=frame["at"].dt.floor("h"))
    dims = [d for d in ("category", "category_top", "channel", "language", "product", "region", "tier")
            if d not in SINGLE_ONLY]
    out: dict[tuple, dict[str, float]] = {}

    def add(grain: str, names: tuple[str, ...], bucket: str, wanted: list[str]) -> None:
        grouped = frame.groupby([bucket, *names], sort=False)[wanted].sum()
        for key, row in zip(grouped.index, grouped.to_numpy(), strict=True):
            key = key if isinstance(key, tuple) else (key,)
            when = key[0].to_pydatetime()
            d1, d2 = (*names, "", "")[:2] if names else (TOTAL, "")
            v1, v2 = (*key[1:], "", "")[:2]
            out[(grain, d1, d2, v1, v2, when)] = {m: float(v) for m, v in zip(wanted, row, strict=True) if v}

    add("d", (), "day", metrics)
    add("h", (), "hour", hourly)
    for name in dims:
        add("d", (name,), "day", metrics)
        add("h", (name,), "hour", hourly)
    for pair in combinations(sorted(dims), 2):
        add("d", pair, "day", metrics)
    return out


def check_loader() -> None:
    """The vectorised loader writes what fan_out writes (on 2,000 items)."""
    frame = items(2000, seed=7)
    expected = new_deltas()
    metrics = [m for m in RAW_METRICS if m in frame.columns]
    for row in frame.itertuples(index=False):
        dims = {name: getattr(row, name) for name in (*LEVELS, "category_top")}
        fan_out(expected, row.at.to_pydatetime(), dims, {m: getattr(row, m) for m in metrics})
    got = sums(frame)
    want = {k: {m: v for m, v in d.items() if v} for k, d in expected.items()}
    want = {k: d for k, d in want.items() if d}
    assert got.keys() == want.keys(), (len(got), len(want))
    assert all(abs(got[k][m] - want[k][m]) < 1e-9 for k in want for m in want[k])


async def fill(url: str, rows: dict[tuple, dict[str, float]]) -> None:
    await run_migrations(SERVICE_DIR, url)
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            def write(sync) -> None:  # type: ignore[no-untyped-def]
                dialect = sync.dialect
                to_db = Aggregate.__table__.c.bucket.type.dialect_impl(dialect).bind_processor(dialect)
                batch = [(*k[:5], to_db(k[5]), *(v.get(m, 0.0) for m in RAW_METRICS)) for k, v in rows.items()]
                sync.exec_driver_sql(SQLITE_UPSERT, batch)
            await connection.run_sync(write)
    finally:
        await engine.dispose()


QUERIES = {
    "volume per day, last 90 days": lambda s, end: series(s, ["volume", "negative_share"], "day",
                                                          end - timedelta(days=90), end),
    "CSAT per month by category, 1 year": lambda s, end: series(s, ["csat"], "month", START, end,
                                                                group_by="category"),
    "negative share per week, channel=email by region": lambda s, end: series(
        s, ["negative_share"], "week", end - timedelta(days=182), end, group_by="region",
        filters={"channel": "email"}),
    "volume per hour by channel, last 14 days": lambda s, end: series(s, ["volume"], "hour",
                                                                      end - timedelta(days=14), end,
                                                                      group_by="channel"),
    "top categories, 90 days": lambda s, end: dimension_values(s, "category", end - timedelta(days=90), end),
    "funnel, 90 days": lambda s, end: funnel(s, end - timedelta(days=90), end),
}


async def time_queries(url: str) -> dict[str, float]:
    engine = create_engine(url)
    sessions = session_factory(engine)
    end = START + timedelta(days=DAYS)
    timings = {}
    try:
        for name, query in QUERIES.items():
            runs = []
            for _ in range(5):
                async with sessions() as session:
                    started = time.perf_counter()
                    await query(session, end)
                    runs.append(time.perf_counter() - started)
            timings[name] = statistics.median(runs) * 1000
        async with sessions() as session:
            timings["(aggregate rows)"] = await session.scalar(select(func.count()).select_from(Aggregate.__table__))
    finally:
        await engine.dispose()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    check_loader()
    print("insights: loader checked against the consumers' fan-out (2,000 items): equal")
    results: dict[int, dict[str, float]] = defaultdict(dict)
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            started = time.perf_counter()
            rows = sums(items(size))
            url = f"sqlite+aiosqlite:///{tmp}/insights-{size}.db"
            asyncio.run(fill(url, rows))
            print(f"insights: {size:,} items over {DAYS} days -> {len(rows):,} aggregate rows "
                  f"(built in {time.perf_counter() - started:.0f} s)", flush=True)
            results[size] = asyncio.run(time_queries(url))
    header = "query (SQLite, median of 5, ms)"
    print(f"\n{header:<55}" + "".join(f"{size:>14,}" for size in args.sizes))
    for name in [*QUERIES, "(aggregate rows)"]:
        print(f"{name:<55}" + "".join(f"{results[size][name]:>14,.1f}" for size in args.sizes))


if __name__ == "__main__":
    main()
