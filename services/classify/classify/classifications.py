"""Storing a feedback item's classification and announcing it (`feedback.classified.v1`) in the same
transaction: the record and its outbox event commit together or not at all."""

from datetime import UTC, datetime
from uuid import UUID

import numpy as np
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from classify.ml.engine import EngineConfig, Result, decide
from classify.models import ClassificationRecord, outbox
from closedloop.events import Classification, FeedbackClassifiedV1, FeedbackReceivedV1, NearDuplicate
from closedloop.pagination import KeysetPage, keyset_page


async def record_classification(session: AsyncSession, event: FeedbackReceivedV1, result: Result,
                                config: EngineConfig, classified_before: bool) -> None:
    """Store `result` for the event's feedback (replacing the earlier record when `classified_before`)
    and stage its `feedback.classified.v1`, in the caller's transaction."""
    outcome = decide(result, config)
    # Reclassifying replaces the earlier record. (Had another batch classified this feedback since
    # `prepare` looked, the insert fails on the key and the message is retried: then it is found.)
    existing = await session.get(ClassificationRecord, str(event.feedback_id)) if classified_before else None
    record = existing or ClassificationRecord(feedback_id=str(event.feedback_id))
    record.text = event.text
    record.category = outcome.category
    record.category_label = outcome.category_label
    record.top_level = outcome.top_level
    record.confidence = outcome.confidence
    record.needs_triage = outcome.needs_triage
    record.suggestions = outcome.suggestions or None
    record.alternatives = [[key, round(p, 4)] for key, p in result.category.alternatives]
    record.sentiment = outcome.sentiment
    record.sentiment_score = outcome.sentiment_score
    record.polarity = outcome.polarity
    record.severity = outcome.severity
    record.signals = list(result.signals.signals)
    record.emotions = list(result.signals.emotions)
    record.language = outcome.language
    record.language_confidence = outcome.language_confidence
    record.duplicate_of = result.duplicate_of
    record.near_duplicates = [{"feedback_id": n.feedback_id, "similarity": n.similarity}
                              for n in result.near_duplicates]
    record.embedding = np.asarray(result.embedding, dtype=np.float32).tobytes()
    record.taxonomy_version = result.taxonomy_version
    record.model_version = result.model_version
    record.created_at = datetime.now(UTC)
    if existing is None:
        session.add(record)
    outbox.add(session, FeedbackClassifiedV1(
        feedback_id=event.feedback_id, channel=event.channel, text=event.text, subject=event.subject,
        customer=event.customer,
        classification=Classification(
            category=record.category, category_label=record.category_label, top_level=record.top_level,
            confidence=record.confidence, sentiment=record.sentiment,  # type: ignore[arg-type]
            sentiment_score=record.sentiment_score, taxonomy_version=record.taxonomy_version,
            model_version=record.model_version, needs_triage=record.needs_triage,
            suggestions=outcome.suggestions, severity=outcome.severity,  # type: ignore[arg-type]
            signals=record.signals, emotions=record.emotions, language=outcome.language,
            language_confidence=outcome.language_confidence,
        ),
        duplicate_of=UUID(result.duplicate_of) if result.duplicate_of is not None else None,
        near_duplicates=[NearDuplicate(feedback_id=n.feedback_id, similarity=n.similarity)  # type: ignore[arg-type]
                         for n in result.near_duplicates],
        # Passed through so the answer to the customer lands in the same conversation.
        thread_id=event.thread_id, source_id=event.source_id or event.external_id,
    ))


async def classifications_page(session: AsyncSession, needs_triage: bool | None, category: str | None,
                               severity: str | None, limit: int, cursor: str | None,
                               before: datetime | None = None) -> KeysetPage[ClassificationRecord]:
    """Newest first; `before` is the deprecated way to page. Not counted: that would scan every row."""
    query = select(ClassificationRecord)
    if needs_triage is not None:
        query = query.where(ClassificationRecord.needs_triage.is_(needs_triage))
    if category is not None:
        query = query.where(ClassificationRecord.category == category)
    if severity is not None:
        query = query.where(ClassificationRecord.severity == severity)
    if before is not None:
        query = query.where(ClassificationRecord.created_at < (before if before.tzinfo else before.replace(tzinfo=UTC)))
    return await keyset_page(session, query, order=(ClassificationRecord.created_at, ClassificationRecord.feedback_id),
                             limit=limit, cursor=cursor, count=False)
