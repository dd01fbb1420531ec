"""The consumer handlers: one method per consumed event, each run in the consumer's transaction (never
committing). Every event notify hears about is planned the same way (notify.deliveries)."""

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events import AlertRaisedV1, CustomerChurnRiskDetectedV1, Event, OpportunityDetectedV1
from notify.deliveries import plan_deliveries
from notify.settings import NotifySettings


class Handlers:
    def __init__(self, settings: NotifySettings) -> None:
        self.settings = settings

    async def on_ticket_event(self, session: AsyncSession, event: Event, prepared: object = None) -> None:
        """Any ticket.*.v1 event (closedloop.events.TICKET_EVENTS)."""
        await plan_deliveries(session, event, self.settings)

    async def on_alert_raised(self, session: AsyncSession, event: AlertRaisedV1, prepared: object = None) -> None:
        await plan_deliveries(session, event, self.settings)

    async def on_churn_risk_detected(self, session: AsyncSession, event: CustomerChurnRiskDetectedV1,
                                     prepared: object = None) -> None:
        await plan_deliveries(session, event, self.settings)

    async def on_opportunity_detected(self, session: AsyncSession, event: OpportunityDetectedV1,
                                      prepared: object = None) -> None:
        await plan_deliveries(session, event, self.settings)
