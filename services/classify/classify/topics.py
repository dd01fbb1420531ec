"""Emerging topics: recent messages clustered by embedding, with volume now against the window before.

Computed on request from the stored embeddings of the last two windows (at most `topic_max_items`
messages): a leader clustering in time order — each message joins the most similar topic centre at or
above `topic_similarity`, or starts a new topic — is linear in messages × topics and needs no
number of clusters up front. A topic's id is its first message's feedback id.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from classify.ml.clustering import cluster
from classify.models import ClassificationRecord


@dataclass(frozen=True)
class Topic:
    id: str
    label: str
    top_category: str
    volume: int
    previous_volume: int
    trend: str
    growth: float | None
    negative_share: float
    sample_feedback_ids: list[str]


def trend_of(volume: int, previous: int) -> tuple[str, float | None]:
    if previous == 0:
        return ("new" if volume else "stable"), None
    growth = volume / previous - 1.0
    if growth >= 0.25:
        return "rising", round(growth, 3)
    if growth <= -0.25:
        return "falling", round(growth, 3)
    return "stable", round(growth, 3)


async def compute_topics(session: AsyncSession, now: datetime, window: timedelta, similarity: float,
                         max_items: int, min_volume: int, limit: int) -> tuple[int, list[Topic]]:
    start = now - 2 * window
    rows = (await session.execute(
        select(ClassificationRecord.feedback_id, ClassificationRecord.created_at, ClassificationRecord.embedding,
               ClassificationRecord.text, ClassificationRecord.category, ClassificationRecord.sentiment)
        .where(ClassificationRecord.created_at >= start, ClassificationRecord.created_at <= now,
               ClassificationRecord.embedding.is_not(None))
        .order_by(ClassificationRecord.created_at.desc()).limit(max_items))).all()
    rows = rows[::-1]  # oldest first: a topic's leader is its first message
    if not rows:
        return 0, []
    vectors = np.stack([np.frombuffer(r.embedding, dtype=np.float32) for r in rows])
    ids = [r.feedback_id for r in rows]
    current_start = now - window
    in_current = np.array([r.created_at >= current_start for r in rows])
    topics: list[Topic] = []
    for c in cluster(vectors, ids, similarity):
        members = np.array(c.members)
        volume = int(in_current[members].sum())
        previous = len(members) - volume
        if volume < min_volume:
            continue
        trend, growth = trend_of(volume, previous)
        current_members = [m for m in c.members if in_current[m]]
        central = max(current_members, key=lambda m: float(vectors[m] @ c.centre))
        categories = Counter(rows[m].category for m in current_members)
        negative = sum(rows[m].sentiment == "negative" for m in current_members)
        text = rows[central].text
        topics.append(Topic(
            id=c.leader, label=text if len(text) <= 120 else text[:117] + "…",
            top_category=categories.most_common(1)[0][0], volume=volume, previous_volume=previous, trend=trend,
            growth=growth, negative_share=round(negative / volume, 3),
            sample_feedback_ids=[rows[m].feedback_id for m in current_members[-5:]],
        ))
    topics.sort(key=lambda t: (-t.volume, t.id))
    return int(in_current.sum()), topics[:limit]
