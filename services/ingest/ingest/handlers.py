"""The consumer handlers: one method per consumed event, each run in the consumer's transaction (never
committing) and calling the use case. The erasure itself is subscribed by closedloop.erasure
(`rights.erase_customer`)."""

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events import (
    CustomerErasureCompletedV1,
    FeedbackClassifiedV1,
    TicketCreatedV1,
    TicketFeedbackAttachedV1,
    TicketResolvedV1,
)
from ingest import progress, rights
from ingest.settings import IngestSettings


class Handlers:
    def __init__(self, settings: IngestSettings) -> None:
        self.settings = settings

    async def on_feedback_classified(self, session: AsyncSession, event: FeedbackClassifiedV1,
                                     prepared: object = None) -> None:
        await progress.record_classification(session, event)

    async def on_ticket_event(self, session: AsyncSession,
                              event: TicketCreatedV1 | TicketFeedbackAttachedV1 | TicketResolvedV1,
                              prepared: object = None) -> None:
        """ticket.created.v1, ticket.feedback_attached.v1 and ticket.resolved.v1."""
        await progress.follow_ticket(session, event)

    async def on_erasure_completed(self, session: AsyncSession, event: CustomerErasureCompletedV1,
                                   prepared: object = None) -> None:
        await rights.record_completion(session, event, self.settings.erasure_services)
