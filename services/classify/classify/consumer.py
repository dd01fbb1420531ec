"""Handling `feedback.received.v1` (classify, store, announce `feedback.classified.v1`) and
`ticket.recategorized.v1` (an agent's correction becomes a training example)."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from classify.engine import ClassificationEngine, DuplicateIndex, Result, decide
from classify.examples import add_examples
from classify.language import LanguagePrediction
from classify.models import ClassificationRecord, ModelVersion, TrainingExample, outbox
from closedloop.events import (
    Classification,
    FeedbackClassifiedV1,
    FeedbackReceivedV1,
    NearDuplicate,
    TicketRecategorizedV1,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prepared:
    results: dict[str, Result]  # by event id
    classified_before: set[str]  # feedback ids that already have a classification record


class FeedbackReceivedHandler:
    def __init__(self, engine: ClassificationEngine,
                 read_sessions: async_sessionmaker[AsyncSession] | None = None) -> None:
        self.engine = engine
        self.read_sessions = read_sessions  # to see what other replicas classified
        self._previous: asyncio.Future[Prepared] | None = None  # the batch prepared before this one

    async def prepare(self, events: list[FeedbackReceivedV1]) -> Awaitable[Prepared]:
        """Start embedding the batch (one model call) and detecting its languages, note which messages were
        classified before (one query for the batch), and return at once: the consumer fetches and
        prepares the next batch while the model works. The returned future then classifies the batch
        and links near-duplicates among recent messages, strictly after the batch before it, so a burst
        split over two batches is still linked."""
        feedback_ids = [str(e.feedback_id) for e in events]
        texts = [_text_of(e) for e in events]
        embedding = asyncio.ensure_future(self.engine.embed_async(texts))
        languages = asyncio.ensure_future(self.engine.detect_languages_async(texts))
        classified_before: set[str] = set()
        try:
            if self.read_sessions is not None:
                if self.engine.duplicates is not None:
                    await refresh_duplicates(self.read_sessions, self.engine.duplicates)
                async with self.read_sessions() as session:
                    classified_before = set(await session.scalars(select(ClassificationRecord.feedback_id)
                                                                  .where(ClassificationRecord.feedback_id.in_(feedback_ids))))
        except BaseException:
            # Never leave the model call behind (nor its exception unretrieved).
            await asyncio.gather(embedding, languages, return_exceptions=True)
            raise
        self._previous = asyncio.ensure_future(self._classify(
            events, feedback_ids, texts, embedding, languages, classified_before, self._previous))
        return self._previous

    async def _classify(self, events: list[FeedbackReceivedV1], feedback_ids: list[str], texts: list[str],
                        embedding: Awaitable[np.ndarray], languages: Awaitable[list[LanguagePrediction]],
                        classified_before: set[str], previous: asyncio.Future[Prepared] | None) -> Prepared:
        embeddings, detected = await asyncio.gather(embedding, languages)
        if previous is not None:  # its failure is its own batch's business
            await asyncio.wait([previous])
        now = datetime.now(UTC)
        results = await self.engine.classify_async(texts, now=now, feedback_ids=feedback_ids, embeddings=embeddings,
                                                   languages=detected)
        if self.engine.duplicates is not None:
            for feedback_id, result in zip(feedback_ids, results, strict=True):
                self.engine.duplicates.add(feedback_id, now, result.embedding, result.duplicate_of)
        return Prepared({str(e.event_id): r for e, r in zip(events, results, strict=True)}, classified_before)

    async def __call__(self, session: AsyncSession, event: FeedbackReceivedV1, prepared: Prepared) -> None:
        result = prepared.results[str(event.event_id)]
        outcome = decide(result, self.engine.config)
        # Reclassifying replaces the earlier record. (Had another batch classified this feedback since
        # `prepare` looked, the insert fails on the key and the message is retried: then it is found.)
        existing = (await session.get(ClassificationRecord, str(event.feedback_id))
                    if str(event.feedback_id) in prepared.classified_before else None)
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
            duplicate_of=result.duplicate_of,
            near_duplicates=[NearDuplicate(feedback_id=n.feedback_id, similarity=n.similarity)  # type: ignore[arg-type]
                             for n in result.near_duplicates],
            # Passed through so the answer to the customer lands in the same conversation.
            thread_id=event.thread_id, source_id=event.source_id or event.external_id,
        ))


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


class TicketRecategorizedHandler:
    """An agent moved a ticket to another category: that text, with that label, is a training example.
    After `retrain_after` new corrections (0 = never) a training run is queued automatically."""

    def __init__(self, retrain_after: int = 0,
                 queue_training: Callable[[AsyncSession], Awaitable[None]] | None = None) -> None:
        self.retrain_after = retrain_after
        self.queue_training = queue_training

    async def __call__(self, session: AsyncSession, event: TicketRecategorizedV1, prepared: object) -> None:
        if not event.text.strip() or not event.category.strip():
            return
        feedback_id = str(event.feedback_id) if event.feedback_id else None
        accepted, _ = await add_examples(session, [(event.text, event.category)], "recategorized", feedback_id)
        if accepted:
            log.info("correction stored as a training example",
                     extra={"ticket_id": str(event.ticket_id), "label": event.category})
        if accepted and self.retrain_after > 0 and self.queue_training is not None:
            await self._maybe_retrain(session)

    async def _maybe_retrain(self, session: AsyncSession) -> None:
        busy = await session.scalar(select(func.count()).select_from(ModelVersion)
                                    .where(ModelVersion.status.in_(("queued", "training"))))
        if busy:
            return
        last = await session.scalar(select(func.max(ModelVersion.created_at)))
        query = select(func.count()).select_from(TrainingExample).where(TrainingExample.source == "recategorized")
        if last is not None:
            query = query.where(TrainingExample.created_at > last)
        corrections = await session.scalar(query) or 0
        if corrections >= self.retrain_after and self.queue_training is not None:
            await self.queue_training(session)


def _text_of(event: FeedbackReceivedV1) -> str:
    # The subject line often names the problem more plainly than the body.
    return f"{event.subject}. {event.text}" if event.subject else event.text
