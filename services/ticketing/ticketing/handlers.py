"""What ticketing does with the events it consumes: one method per event, with the consumer's signature.

Each runs in the transaction the consumer opened for its batch (it never commits) and hands the work to
the use case: `tickets.open_ticket` for classified feedback, `conversation` for the customer's replies,
CSAT answers, what became of our messages and spike alerts."""

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events import (
    AlertRaisedV1,
    FeedbackClassifiedV1,
    FeedbackCsatAnsweredV1,
    FeedbackReplyReceivedV1,
    NotificationDeliveredV1,
    NotificationFailedV1,
    NotificationSuppressedV1,
)
from ticketing import conversation
from ticketing.clock import Clock
from ticketing.routing import RoutingTable
from ticketing.tickets import TicketOptions, open_ticket


class Handlers:
    """Built once in `main.py` with the routing table, the clock and the ticket options."""

    def __init__(self, table: RoutingTable, clock: Clock, options: TicketOptions) -> None:
        self.table, self.clock, self.options = table, clock, options

    async def on_feedback_classified(self, session: AsyncSession, event: FeedbackClassifiedV1,
                                     prepared: object = None) -> None:
        await open_ticket(session, event, self.table, self.clock, self.options)

    async def on_feedback_reply_received(self, session: AsyncSession, event: FeedbackReplyReceivedV1,
                                         prepared: object = None) -> None:
        await conversation.on_reply_received(session, event, self.table, self.clock, self.options)

    async def on_feedback_csat_answered(self, session: AsyncSession, event: FeedbackCsatAnsweredV1,
                                        prepared: object = None) -> None:
        await conversation.on_csat_answered(session, event, self.table, self.clock)

    async def on_notification_outcome(self, session: AsyncSession,
                                      event: NotificationDeliveredV1 | NotificationFailedV1 | NotificationSuppressedV1,
                                      prepared: object = None) -> None:
        """`notification.delivered|failed|suppressed.v1`: one subscription for the three outcomes."""
        await conversation.on_notification_outcome(session, event, self.clock)

    async def on_alert_raised(self, session: AsyncSession, event: AlertRaisedV1, prepared: object = None) -> None:
        await conversation.on_alert_raised(session, event, self.clock)
