"""Opportunities: feature requests and unmet needs clustered by wording, sized by volume, trend and the
summed value of the distinct customers asking.

TF-IDF over the mentions' words and word pairs (scikit-learn), then agglomerative clustering on cosine
distance with a distance threshold, so the number of themes follows the data. A theme is named by its
heaviest terms. Raised once per theme and ISO week as `opportunity.detected.v1`.
"""

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import numpy as np
from sqlalchemy import CursorResult, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events import OpportunityDetectedV1
from insights.models import NeedMention, RaisedOpportunity, outbox

RECENT_DAYS = 28


@dataclass
class Opportunity:
    id: str
    title: str
    terms: list[str]
    category: str
    mentions: int
    customers: int
    customer_value: float
    recent: int
    previous: int
    trend: float
    examples: list[str] = field(default_factory=list)


def cluster_texts(texts: list[str], distance_threshold: float = 0.85) -> tuple[np.ndarray, list[list[str]]]:
    """Cluster labels per text and, per cluster, its top terms."""
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(stop_words="english", ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    matrix = vectorizer.fit_transform(texts)
    if matrix.shape[1] == 0:
        return np.zeros(len(texts), dtype=int), [[]]
    dense = matrix.toarray()
    empty = dense.sum(axis=1) == 0
    dense[empty, 0] = 1e-6  # texts with no shared term: alone, far from the rest
    labels = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average",
                                     distance_threshold=distance_threshold).fit_predict(dense)
    vocabulary = np.array(vectorizer.get_feature_names_out())
    terms = []
    for label in range(labels.max() + 1):
        weights = dense[labels == label].mean(axis=0)
        top = [vocabulary[i] for i in np.argsort(weights)[::-1][:6] if weights[i] > 0]
        # Prefer phrases to their own words ("dark mode" over "dark" and "mode").
        kept = [t for t in top if not any(t != o and t in o.split() for o in top)]
        terms.append(kept[:3])
    return labels, terms


async def find_opportunities(session: AsyncSession, as_of: datetime, *, days: int = 90,
                             min_mentions: int = 5) -> list[Opportunity]:
    mentions = list(await session.scalars(select(NeedMention).where(
        NeedMention.received_at >= as_of - timedelta(days=days), NeedMention.received_at < as_of)
        .order_by(NeedMention.received_at, NeedMention.feedback_id)))
    if len(mentions) < min_mentions:
        return []
    labels, terms = cluster_texts([m.text for m in mentions])
    recent_since, previous_since = as_of - timedelta(days=RECENT_DAYS), as_of - timedelta(days=2 * RECENT_DAYS)
    found = []
    for label in range(labels.max() + 1):
        members = [m for m, lab in zip(mentions, labels, strict=True) if lab == label]
        if len(members) < min_mentions or not terms[label]:
            continue
        values: dict[str, float] = {}
        for m in members:
            values[m.customer_id] = max(values.get(m.customer_id, 0.0), m.value or 0.0)
        recent = sum(m.received_at >= recent_since for m in members)
        previous = sum(previous_since <= m.received_at < recent_since for m in members)
        categories = [m.category for m in members]
        signature = " ".join(sorted(terms[label]))
        found.append(Opportunity(
            id=hashlib.sha256(signature.encode()).hexdigest()[:16], title=" / ".join(terms[label]),
            terms=terms[label], category=max(set(categories), key=categories.count), mentions=len(members),
            customers=len(values), customer_value=round(sum(values.values()), 2), recent=recent, previous=previous,
            trend=round(recent / previous, 3) if previous else float(recent),
            examples=[m.text[:200] for m in members[-3:]]))
    found.sort(key=lambda o: (o.customer_value, o.mentions), reverse=True)
    return found


async def raise_opportunities(session: AsyncSession, found: list[Opportunity], as_of: datetime,
                              now: datetime) -> list[Opportunity]:
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    week = as_of.strftime("%G-W%V")
    raised = []
    for o in found:
        result = cast(CursorResult[Any], await session.execute(insert(RaisedOpportunity).values(
            key=f"{o.id}|{week}", title=o.title,
            detail={"mentions": o.mentions, "customers": o.customers, "customer_value": o.customer_value,
                    "trend": o.trend, "terms": o.terms, "category": o.category},
            raised_at=now).on_conflict_do_nothing(index_elements=["key"])))
        if result.rowcount == 1:
            outbox.add(session, OpportunityDetectedV1(
                opportunity_id=o.id, title=o.title, terms=o.terms, category=o.category, mentions=o.mentions,
                customers=o.customers, customer_value=o.customer_value, trend=o.trend, examples=o.examples,
                as_of=as_of))
            raised.append(o)
    return raised
