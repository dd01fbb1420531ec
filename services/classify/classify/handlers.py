"""The events classify consumes, one method each, run in the consumer's transaction (never committing):
`feedback.received.v1` (classify, store, announce `feedback.classified.v1`) and `ticket.recategorized.v1`
(an agent's correction becomes a training example)."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from classify.classifications import record_classification
from classify.duplicates import refresh_duplicates
from classify.examples import add_examples
from classify.ml.engine import ClassificationEngine, Result
from classify.ml.language import LanguagePrediction
from classify.models import ClassificationRecord
from classify.training_runs import retrain_if_corrected
from closedloop.events import FeedbackReceivedV1, TicketRecategorizedV1

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prepared:
    results: dict[str, Result]  # by event id
    classified_before: set[str]  # feedback ids that already have a classification record


class Handlers:
    """Built once in `main.py`. After `retrain_after` new corrections (0 = never) a training run is queued
    automatically with `retrain` (`training_runs.queue_retraining`)."""

    def __init__(self, engine: ClassificationEngine, read_sessions: async_sessionmaker[AsyncSession] | None = None,
                 retrain_after: int = 0,
                 retrain: Callable[[AsyncSession], Awaitable[None]] | None = None) -> None:
        self.engine = engine
        self.read_sessions = read_sessions  # to see what other replicas classified
        self.retrain_after = retrain_after
        self.retrain = retrain
        self._previous: asyncio.Future[Prepared] | None = None  # the batch prepared before this one

    # --- feedback.received.v1 -------------------------------------------------------------------

    async def prepare_feedback_received(self, events: list[FeedbackReceivedV1]) -> Awaitable[Prepared]:
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

    async def on_feedback_received(self, session: AsyncSession, event: FeedbackReceivedV1,
                                   prepared: object = None) -> None:
        assert isinstance(prepared, Prepared), "subscribed with prepare=prepare_feedback_received"
        await record_classification(session, event, prepared.results[str(event.event_id)], self.engine.config,
                                    str(event.feedback_id) in prepared.classified_before)

    # --- ticket.recategorized.v1 ----------------------------------------------------------------

    async def on_ticket_recategorized(self, session: AsyncSession, event: TicketRecategorizedV1,
                                      prepared: object = None) -> None:
        """An agent moved a ticket to another category: that text, with that label, is a training example."""
        if not event.text.strip() or not event.category.strip():
            return
        feedback_id = str(event.feedback_id) if event.feedback_id else None
        accepted, _ = await add_examples(session, [(event.text, event.category)], "recategorized", feedback_id)
        if accepted:
            log.info("correction stored as a training example",
                     extra={"ticket_id": str(event.ticket_id), "label": event.category})
        if accepted and self.retrain_after > 0 and self.retrain is not None:
            await retrain_if_corrected(session, self.retrain_after, self.retrain)


def _text_of(event: FeedbackReceivedV1) -> str:
    # The subject line often names the problem more plainly than the body.
    return f"{event.subject}. {event.text}" if event.subject else event.text
