"""Handling `feedback.received.v1`: classify, store, and announce `feedback.classified.v1`."""

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from classify.engine import ClassificationEngine, Result
from classify.models import ClassificationRecord, outbox
from closedloop.events import Classification, FeedbackClassifiedV1, FeedbackReceivedV1


class FeedbackReceivedHandler:
    def __init__(self, engine: ClassificationEngine) -> None:
        self.engine = engine

    async def prepare(self, events: list[FeedbackReceivedV1]) -> dict[str, Result]:
        """Embed the whole batch in one model call."""
        results = await self.engine.classify_async([_text_of(e) for e in events])
        return {str(e.event_id): r for e, r in zip(events, results, strict=True)}

    async def __call__(self, session: AsyncSession, event: FeedbackReceivedV1, prepared: dict[str, Result]) -> None:
        result = prepared[str(event.event_id)]
        existing = await session.get(ClassificationRecord, str(event.feedback_id))
        record = existing or ClassificationRecord(feedback_id=str(event.feedback_id))
        record.text = event.text
        record.category = result.category.category
        record.category_label = result.category.label
        record.top_level = result.category.top_level
        record.confidence = round(result.category.confidence, 4)
        record.alternatives = [[key, round(p, 4)] for key, p in result.category.alternatives]
        record.sentiment = result.sentiment.label
        record.sentiment_score = round(result.sentiment.score, 4)
        record.polarity = round(result.sentiment.polarity, 4)
        record.taxonomy_version = self.engine.taxonomy.version
        record.model_version = self.engine.model_version
        record.created_at = datetime.now(UTC)
        if existing is None:
            session.add(record)
        outbox.add(session, FeedbackClassifiedV1(
            feedback_id=event.feedback_id, channel=event.channel, text=event.text, subject=event.subject,
            customer=event.customer,
            classification=Classification(
                category=record.category, category_label=record.category_label, top_level=record.top_level,
                confidence=record.confidence, sentiment=record.sentiment,
                sentiment_score=record.sentiment_score, taxonomy_version=record.taxonomy_version,
                model_version=record.model_version,
            ),
        ))


def _text_of(event: FeedbackReceivedV1) -> str:
    # The subject line often names the problem more plainly than the body.
    return f"{event.subject}. {event.text}" if event.subject else event.text
