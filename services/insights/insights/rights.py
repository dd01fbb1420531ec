"""Data rights, insights' part: the customer's facts keep counting in the sums (which hold no customer ids)
but under a pseudonym; the wording of their feature requests is erased; the record of churn risks raised
about them is deleted (the published events themselves go with the outbox rows, see closedloop.erasure)."""

from typing import Any, cast

from sqlalchemy import CursorResult, delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.erasure import ERASED, pseudonym
from closedloop.events import CustomerErasureRequestedV1
from insights.models import CustomerFact, FeedbackFact, NeedMention, RaisedChurnRisk, TicketFact


async def erase_customer(session: AsyncSession, event: CustomerErasureRequestedV1) -> dict[str, int]:
    alias, customer = pseudonym(event.erasure_id), event.customer_id
    erased = {}
    for model in (FeedbackFact, TicketFact, CustomerFact):
        result = cast(CursorResult[Any], await session.execute(
            update(model).where(model.customer_id == customer).values(customer_id=alias)))
        erased[model.__tablename__] = result.rowcount or 0
    result = cast(CursorResult[Any], await session.execute(
        update(NeedMention).where(NeedMention.customer_id == customer).values(customer_id=alias, text=ERASED)))
    erased["need_mentions"] = result.rowcount or 0
    result = cast(CursorResult[Any], await session.execute(
        delete(RaisedChurnRisk).where(RaisedChurnRisk.customer_id == customer)))
    erased["raised_churn_risks"] = result.rowcount or 0
    return erased
