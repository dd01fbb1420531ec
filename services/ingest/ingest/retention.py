"""Ingest's retention rules: the unmasked original texts are stripped, idempotency keys deleted."""

from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.retention import BATCH, RetentionRule
from ingest.models import Feedback, IdempotencyKey
from ingest.settings import IngestSettings


async def strip_original_texts(session: AsyncSession, cutoff: datetime) -> int:
    ids = select(Feedback.id).where(Feedback.received_at < cutoff, Feedback.original_text.is_not(None)).limit(BATCH)
    result = cast(CursorResult[Any], await session.execute(update(Feedback).where(Feedback.id.in_(ids))
                                                           .values(original_text=None, original_subject=None)))
    return result.rowcount or 0


async def delete_idempotency_keys(session: AsyncSession, cutoff: datetime) -> int:
    keys = select(IdempotencyKey.key).where(IdempotencyKey.created_at < cutoff).limit(BATCH)
    result = cast(CursorResult[Any], await session.execute(delete(IdempotencyKey).where(IdempotencyKey.key.in_(keys))))
    return result.rowcount or 0


def ingest_retention_rules(settings: IngestSettings) -> list[RetentionRule]:
    return [RetentionRule("feedback original texts", settings.original_text_retention_days, strip_original_texts),
            RetentionRule("idempotency keys", settings.idempotency_key_retention_days, delete_idempotency_keys)]
