"""Training examples: stored once per (text, label); the latest label of a text wins at training time."""

import hashlib
from datetime import UTC, datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from classify.models import TrainingExample


def text_hash(text: str) -> str:
    # Case and spacing do not make a new example.
    return hashlib.sha256(" ".join(text.lower().split()).encode("utf-8")).hexdigest()


async def add_examples(session: AsyncSession, pairs: list[tuple[str, str]], source: str,
                       feedback_id: str | None = None) -> tuple[int, int]:
    """Store (text, label) pairs not stored yet; returns (accepted, duplicates). Caller commits."""
    now = datetime.now(UTC)
    hashed = [(text, label, text_hash(text)) for text, label in pairs]
    existing: set[tuple[str, str]] = set()
    hashes = sorted({h for _, _, h in hashed})
    for start in range(0, len(hashes), 1000):
        rows = await session.execute(select(TrainingExample.text_hash, TrainingExample.label)
                                     .where(TrainingExample.text_hash.in_(hashes[start:start + 1000])))
        existing.update((h, label) for h, label in rows.all())
    fresh = []
    for text, label, h in hashed:
        if (h, label) in existing:
            continue
        existing.add((h, label))
        fresh.append({"text": text, "text_hash": h, "label": label, "source": source, "feedback_id": feedback_id,
                      "created_at": now})
    for start in range(0, len(fresh), 2000):
        await session.execute(insert(TrainingExample), fresh[start:start + 2000])
    return len(fresh), len(pairs) - len(fresh)
