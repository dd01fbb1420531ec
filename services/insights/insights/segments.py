"""Customers: RFM segments, churn risk, and the consult -> response -> resolution -> rating funnel.

RFM scores are quintiles (1-5) of recency (days since the last contact; recent scores high), frequency
(contacts) and monetary value (the value the customer profile carries). Segments follow the usual reading:
high value = valuable and recent; at risk = valuable but quiet; potential = frequent, recent, not (yet)
valuable; new = one recent contact; hibernating = neither recent nor valuable; regular = the rest.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import numpy as np
from sqlalchemy import CursorResult, func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events import CustomerChurnRiskDetectedV1
from insights.drivers import FUNNEL_STEPS
from insights.models import CustomerFact, FeedbackFact, RaisedChurnRisk, TicketFact, outbox
from insights.series import read_sums


def quintiles(values: np.ndarray) -> np.ndarray:
    """1..5 by rank (ties share the lower score)."""
    if len(values) == 0:
        return np.array([], dtype=int)
    ranks = np.searchsorted(np.sort(values), values, side="left") / max(len(values), 1)
    return np.clip((ranks * 5).astype(int) + 1, 1, 5)


def segment_of(r: int, f: int, m: int, contacts: int) -> str:
    if m >= 4 and r >= 4:
        return "high_value"
    if m >= 4 and r <= 2:
        return "at_risk"
    if contacts == 1 and r >= 4:
        return "new"
    if f >= 3 and r >= 3:
        return "potential"
    if r <= 2:
        return "hibernating"
    return "regular"


@dataclass
class CustomerScore:
    customer_id: str
    tier: str | None
    value: float
    recency_days: float
    contacts: int
    r: int
    f: int
    m: int
    segment: str


@dataclass
class SegmentSummary:
    segment: str
    customers: int
    value: float
    contacts: int
    negative_share: float | None
    top_categories: list[tuple[str, int]] = field(default_factory=list)


async def score_customers(session: AsyncSession, as_of: datetime) -> list[CustomerScore]:
    rows = list(await session.scalars(select(CustomerFact)))
    if not rows:
        return []
    recency = np.array([(as_of - row.last_contact_at).total_seconds() / 86400 for row in rows])
    contacts = np.array([row.contacts for row in rows])
    value = np.array([row.value or 0.0 for row in rows])
    r, f, m = 6 - quintiles(recency), quintiles(contacts), quintiles(value)
    scores = []
    for i, row in enumerate(rows):
        ri, fi, mi, ci = int(r[i]), int(f[i]), int(m[i]), int(contacts[i])
        scores.append(CustomerScore(row.customer_id, row.tier, float(value[i]), round(float(recency[i]), 1), ci,
                                    ri, fi, mi, segment_of(ri, fi, mi, ci)))
    return scores


async def segment_summaries(session: AsyncSession, as_of: datetime, days: int = 90) -> list[SegmentSummary]:
    scores = await score_customers(session, as_of)
    segment_by_customer = {s.customer_id: s.segment for s in scores}
    categories: defaultdict[str, Counter[str]] = defaultdict(Counter)
    negatives: Counter[str] = Counter()
    items: Counter[str] = Counter()
    result = await session.execute(select(FeedbackFact.customer_id, FeedbackFact.category, FeedbackFact.sentiment)
                                   .where(FeedbackFact.received_at >= as_of - timedelta(days=days),
                                          FeedbackFact.received_at < as_of, FeedbackFact.classified.is_(True)))
    for customer_id, category, sentiment in result.all():
        segment = segment_by_customer.get(customer_id)
        if segment is None:
            continue
        categories[segment][category or "unknown"] += 1
        items[segment] += 1
        negatives[segment] += int(sentiment == "negative")
    summaries = []
    for segment in sorted({s.segment for s in scores}):
        members = [s for s in scores if s.segment == segment]
        summaries.append(SegmentSummary(
            segment, len(members), round(sum(s.value for s in members), 2), sum(s.contacts for s in members),
            round(negatives[segment] / items[segment], 4) if items[segment] else None,
            categories[segment].most_common(5)))
    return summaries


@dataclass
class ChurnRisk:
    customer_id: str
    tier: str | None
    value: float
    segment: str
    risk_score: float
    reasons: list[str]


async def find_churn_risks(session: AsyncSession, as_of: datetime, *, min_value: float, negative_contacts: int,
                           window_days: int) -> list[ChurnRisk]:
    """Valuable customers with repeated negative feedback in the window, or a breached ticket still open."""
    since = as_of - timedelta(days=window_days)
    valuable = {row.customer_id: row for row in await session.scalars(
        select(CustomerFact).where(CustomerFact.value >= min_value))}
    if not valuable:
        return []
    negative_counts = dict((await session.execute(
        select(FeedbackFact.customer_id, func.count()).where(
            FeedbackFact.customer_id.in_(list(valuable)), FeedbackFact.sentiment == "negative",
            FeedbackFact.received_at >= since, FeedbackFact.received_at < as_of)
        .group_by(FeedbackFact.customer_id))).tuples().all())
    open_breaches = dict((await session.execute(
        select(TicketFact.customer_id, func.count()).where(
            TicketFact.customer_id.in_(list(valuable)), TicketFact.breaches > 0,
            TicketFact.status.not_in(("resolved", "closed")), TicketFact.created_at < as_of)
        .group_by(TicketFact.customer_id))).tuples().all())
    segments = {s.customer_id: s.segment for s in await score_customers(session, as_of)}
    risks = []
    for customer_id, customer in sorted(valuable.items()):
        negatives, breaches = negative_counts.get(customer_id, 0), open_breaches.get(customer_id, 0)
        reasons = []
        if negatives >= negative_contacts:
            reasons.append(f"{negatives} negative contacts in {window_days} days")
        if breaches:
            reasons.append(f"{breaches} ticket(s) past their SLA and still unresolved")
        if reasons:
            score = min(1.0, 0.5 * negatives / max(negative_contacts, 1) + 0.3 * min(breaches, 1)
                        + 0.2 * (segments.get(customer_id) == "at_risk"))
            risks.append(ChurnRisk(customer_id, customer.tier, float(customer.value or 0), segments.get(customer_id,
                                   "regular"), round(score, 3), reasons))
    return risks


async def raise_churn_risks(session: AsyncSession, risks: list[ChurnRisk], as_of: datetime,
                            now: datetime) -> list[ChurnRisk]:
    """One event per customer and ISO week of detection; the key keeps replicas from raising it twice."""
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    week = as_of.strftime("%G-W%V")
    raised = []
    for risk in risks:
        result = cast(CursorResult[Any], await session.execute(insert(RaisedChurnRisk).values(
            key=f"{risk.customer_id}|{week}", customer_id=risk.customer_id, risk_score=risk.risk_score,
            reasons=risk.reasons, raised_at=now).on_conflict_do_nothing(index_elements=["key"])))
        if result.rowcount == 1:
            outbox.add(session, CustomerChurnRiskDetectedV1(
                customer_id=risk.customer_id, tier=risk.tier, value=risk.value, segment=risk.segment,
                risk_score=risk.risk_score, reasons=risk.reasons, as_of=as_of))
            raised.append(risk)
    return raised


async def funnel(session: AsyncSession, start: datetime, end: datetime, group_by: str | None = None
                 ) -> dict[str, list[dict]]:
    """group -> steps with count, share of the first step and drop-off from the step before."""
    d1 = group_by or "all"
    rows = await read_sums(session, {metric for _, metric in FUNNEL_STEPS}, "d", d1, "", start, end)
    sums: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for _, value, _, metric, amount in rows:
        sums[value or "all"][metric] += amount
    out = {}
    for group, counts in sorted(sums.items()):
        steps, previous, first = [], None, None
        for step, metric in FUNNEL_STEPS:
            count = counts.get(metric, 0.0)
            first = count if first is None else first
            steps.append({"step": step, "count": count, "of_first": round(count / first, 4) if first else None,
                          "drop_off": round(1 - count / previous, 4) if previous else None})
            previous = count
        out[group] = steps
    return out
