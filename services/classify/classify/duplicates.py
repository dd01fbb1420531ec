"""The in-memory near-duplicate index (`engine.DuplicateIndex`) kept in step with the database: every
replica classifies, so each one adds what the others stored before it links a new batch."""

from datetime import UTC, datetime

import numpy as np
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from classify.ml.engine import DuplicateIndex
from classify.models import ClassificationRecord


async def refresh_duplicates(sessions: async_sessionmaker[AsyncSession], index: DuplicateIndex,
                             now: datetime | None = None) -> None:
    """Add messages classified since the index last looked (by any replica) to the in-memory index."""
    now = now or datetime.now(UTC)
    since = now.timestamp() - index.window_seconds
    start = datetime.fromtimestamp(since, UTC)
    if index.last_seen is not None and index.last_seen > start:
        start = index.last_seen
    async with sessions() as session:
        rows = (await session.execute(
            select(ClassificationRecord.feedback_id, ClassificationRecord.created_at,
                   ClassificationRecord.embedding, ClassificationRecord.duplicate_of)
            .where(ClassificationRecord.created_at >= start, ClassificationRecord.embedding.is_not(None))
            .order_by(ClassificationRecord.created_at.desc()).limit(index.max_items))).all()
    for feedback_id, created_at, blob, root in reversed(rows):
        index.add(feedback_id, created_at, np.frombuffer(blob, dtype=np.float32), root)
