"""Data rights, classify's part: the customer's classifications lose their text and embedding, the
training examples made from their feedback are deleted, and the in-memory duplicate index forgets them."""

from typing import Any, cast

from sqlalchemy import CursorResult, delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from classify.ml.engine import DuplicateIndex
from classify.models import ClassificationRecord, TrainingExample
from closedloop.erasure import ERASED, Eraser, chunks
from closedloop.events import CustomerErasureRequestedV1


def classify_eraser(duplicates: DuplicateIndex | None) -> Eraser:
    async def erase(session: AsyncSession, event: CustomerErasureRequestedV1) -> dict[str, int]:
        erased = {"classifications": 0, "training_examples": 0}
        for group in chunks(event.feedback_ids):
            erased["classifications"] += cast(CursorResult[Any], await session.execute(
                update(ClassificationRecord).where(ClassificationRecord.feedback_id.in_(group))
                .values(text=ERASED, embedding=None))).rowcount or 0
            erased["training_examples"] += cast(CursorResult[Any], await session.execute(
                delete(TrainingExample).where(TrainingExample.feedback_id.in_(group)))).rowcount or 0
        if duplicates is not None:
            duplicates.forget(event.feedback_ids)
        return erased

    return erase
