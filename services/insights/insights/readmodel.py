"""The read model: facts per feedback item, ticket and customer, and the sums. handlers.py calls these
for each event, inside the consumer's transaction.

Feedback-side sums (volume, sentiment, survey scores, repeat contacts) are counted when the item is
classified, in the hour it was received. Ticket-side sums (tickets, response and resolution times,
reassignments, breaches, reopens, CSAT) are counted in the hour the ticket was created, so a day's row
describes the tickets opened that day however late they were answered. Ticket sums carry the feedback's
dimensions (channel, language, region, product), which arrive on another stream: while the feedback fact
is missing they wait as pending contributions and are applied when it comes.
"""

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events import (
    Event,
    FeedbackClassifiedV1,
    FeedbackReceivedV1,
    NotificationDeliveredV1,
    NotificationFailedV1,
    TicketAssignedV1,
    TicketCreatedV1,
    TicketCsatReceivedV1,
    TicketRecategorizedV1,
    TicketRepliedV1,
    TicketResolvedV1,
    TicketSlaBreachedV1,
)
from insights.dimensions import clean_dims
from insights.models import Base, CustomerFact, FeedbackFact, NeedMention, PendingContribution, TicketFact
from insights.store import LOCKED_KEY, PENDING_KEY, add_fact, contribute, get_fact, preload

REPEAT_CONTACT_WINDOW = timedelta(days=7)
CLOSED_STATUSES = ("resolved", "closed")


def top_level(category: str | None) -> str | None:
    return category.split("/", 1)[0] if category else None


def concurrent_writers(session: AsyncSession) -> bool:
    """PostgreSQL runs the two consumers' transactions side by side; SQLite serialises writers."""
    return session.get_bind().dialect.name == "postgresql"


async def lock_feedback(session: AsyncSession, feedback_id: str) -> None:
    """Serialise the feedback and ticket consumers on one feedback item, so a pending contribution is never
    written just after the fact it waits for was looked at. What was read before the lock is read again."""
    if concurrent_writers(session):
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": feedback_id})


# What a batch will touch, loaded in a few queries when its first event is handled (see store.preload).


def feedback_batch_keys(events: list[Event]) -> dict[type[Base], set[str]]:
    return {FeedbackFact: {str(e.feedback_id) for e in events if hasattr(e, "feedback_id")},
            CustomerFact: {e.customer.id for e in events if hasattr(e, "customer")}}


def ticket_batch_keys(events: list[Event]) -> dict[type[Base], set[str]]:
    tickets, feedback = set(), set()
    for e in events:
        snapshot = getattr(e, "ticket", None)
        if snapshot is not None:
            tickets.add(str(snapshot.ticket_id))
            if snapshot.feedback_id:
                feedback.add(str(snapshot.feedback_id))
        elif ticket_id := getattr(e, "ticket_id", None):
            tickets.add(str(ticket_id))
    return {TicketFact: tickets, FeedbackFact: feedback}


async def pending_for(session: AsyncSession, feedback_id: str, batch: set[str]) -> list[PendingContribution]:
    """The pending contributions of one feedback item (those of the whole batch in one query on SQLite)."""
    if concurrent_writers(session):
        return list(await session.scalars(select(PendingContribution)
                                          .where(PendingContribution.feedback_id == feedback_id)))
    loaded = session.info.get(PENDING_KEY)
    if loaded is None:
        loaded = {}
        ids = sorted(batch | {feedback_id})
        for start in range(0, len(ids), 500):
            for row in await session.scalars(select(PendingContribution)
                                             .where(PendingContribution.feedback_id.in_(ids[start:start + 500]))):
                loaded.setdefault(row.feedback_id, []).append(row)
        session.info[PENDING_KEY] = loaded
    return loaded.pop(feedback_id, [])


def feedback_dims(fact: FeedbackFact) -> dict[str, str]:
    return clean_dims({"channel": fact.channel, "category": fact.category, "category_top": top_level(fact.category),
                       "language": fact.language, "tier": fact.tier, "region": fact.region,
                       "product": fact.product})


def ticket_dims(fact: TicketFact) -> dict[str, str]:
    return clean_dims({"team": fact.team, "agent": fact.assignee or "unassigned", "category": fact.category,
                       "category_top": top_level(fact.category), "tier": fact.tier})


# --- feedback ------------------------------------------------------------------------------------


async def lock_batch(session: AsyncSession, feedback_ids: set[str]) -> None:
    """Take the batch's feedback locks up front, in one order: the feedback and ticket consumers' batches
    share feedback ids, and locks taken event by event in two orders deadlock (PostgreSQL aborts one batch,
    which then crawls through its messages one by one)."""
    if concurrent_writers(session) and not session.info.get(LOCKED_KEY):
        session.info[LOCKED_KEY] = True
        for key in sorted(feedback_ids):
            await lock_feedback(session, key)


async def start_batch(session: AsyncSession, wanted: dict[type[Base], set[str]] | None) -> None:
    """Lock the batch's feedback items and load what it will touch, once, before its first event."""
    if wanted:
        await lock_batch(session, wanted.get(FeedbackFact, set()))
        await preload(session, wanted)


async def record_feedback_received(session: AsyncSession, event: FeedbackReceivedV1) -> None:
    key = str(event.feedback_id)
    fact = await get_fact(session, FeedbackFact, key)
    if fact is None:
        fact = FeedbackFact(feedback_id=key, classified=False)
        add_fact(session, FeedbackFact, key, fact)
    fact.received_at = event.received_at
    fact.channel = event.channel
    fact.customer_id = event.customer.id
    fact.tier = event.customer.tier
    fact.value = event.customer.value
    fact.region = event.region
    fact.product = event.product
    fact.language = fact.language or (event.language.split("-")[0].lower() if event.language else None)
    fact.nps = event.nps
    fact.csat = event.csat


async def record_feedback_classified(session: AsyncSession, event: FeedbackClassifiedV1,
                                     opportunity_categories: list[str], batch: set[str]) -> None:
    key = str(event.feedback_id)
    await lock_feedback(session, key)
    fact = await get_fact(session, FeedbackFact, key)
    if fact is None:  # its received event is gone from the stream (retention): what classify tells is enough
        fact = FeedbackFact(feedback_id=key, received_at=event.occurred_at, channel=event.channel,
                            customer_id=event.customer.id, tier=event.customer.tier, value=event.customer.value)
        add_fact(session, FeedbackFact, key, fact)
    elif fact.classified:  # classified again (e.g. reprocessed): counted once, the latest labels kept
        fact.category, fact.sentiment = event.classification.category, event.classification.sentiment
        return
    c = event.classification
    fact.category, fact.sentiment, fact.sentiment_score = c.category, c.sentiment, c.sentiment_score
    if c.language and c.language != "und":
        fact.language = c.language
    fact.classified = True

    repeat = await record_contact(session, fact)
    signed = {"positive": 1.0, "negative": -1.0}.get(c.sentiment, 0.0) * c.sentiment_score
    metrics = {"items": 1, c.sentiment: 1, "sentiment_sum": signed, "repeat_contacts": int(repeat)}
    if fact.nps is not None:
        metrics.update(nps_n=1, nps_promoters=int(fact.nps >= 9), nps_detractors=int(fact.nps <= 6))
    if fact.csat is not None:
        metrics.update(csat_sum=fact.csat, csat_n=1, csat_low=int(fact.csat <= 2))
    dims = feedback_dims(fact)
    contribute(session, fact.received_at, dims, metrics)

    if c.category in opportunity_categories:
        session.add(NeedMention(feedback_id=key, customer_id=fact.customer_id, value=fact.value,
                                category=c.category, text=event.text[:2000], received_at=fact.received_at))
    # Ticket sums that arrived first now get this item's dimensions.
    for row in await pending_for(session, key, batch):
        contribute(session, row.at, {**dims, **row.dims}, row.metrics)
        await session.delete(row)


async def record_contact(session: AsyncSession, fact: FeedbackFact) -> bool:
    """Update the customer's activity; True when they had contacted us within the repeat window before."""
    customer = await get_fact(session, CustomerFact, fact.customer_id)
    negative = int(fact.sentiment == "negative")
    if customer is None:
        add_fact(session, CustomerFact, fact.customer_id, CustomerFact(
            customer_id=fact.customer_id, tier=fact.tier, value=fact.value, first_contact_at=fact.received_at,
            last_contact_at=fact.received_at, contacts=1, negatives=negative))
        return False
    repeat = abs(fact.received_at - customer.last_contact_at) <= REPEAT_CONTACT_WINDOW
    customer.contacts += 1
    customer.negatives += negative
    customer.tier = fact.tier or customer.tier
    customer.value = fact.value if fact.value is not None else customer.value
    customer.first_contact_at = min(customer.first_contact_at, fact.received_at)
    customer.last_contact_at = max(customer.last_contact_at, fact.received_at)
    return repeat


# --- tickets -------------------------------------------------------------------------------------


async def ticket_contribution(session: AsyncSession, ticket: TicketFact, metrics: dict[str, float]) -> None:
    dims = ticket_dims(ticket)
    if ticket.feedback_id is None:
        contribute(session, ticket.created_at, dims, metrics)
        return
    await lock_feedback(session, ticket.feedback_id)
    feedback = await get_fact(session, FeedbackFact, ticket.feedback_id, fresh=concurrent_writers(session))
    if feedback is not None and feedback.classified:
        contribute(session, ticket.created_at, {**feedback_dims(feedback), **dims}, metrics)
    else:
        session.add(PendingContribution(feedback_id=ticket.feedback_id, at=ticket.created_at, dims=dims,
                                        metrics=metrics))


def minutes_between(start: datetime, end: datetime) -> float:
    return max((end - start).total_seconds(), 0.0) / 60.0


async def record_ticket_event(session: AsyncSession, event: Event) -> None:
    snapshot = getattr(event, "ticket", None)
    ticket_id = str(snapshot.ticket_id) if snapshot is not None else str(getattr(event, "ticket_id", ""))
    ticket = await get_fact(session, TicketFact, ticket_id)
    if isinstance(event, TicketCreatedV1):
        if ticket is not None:
            return
        assert snapshot is not None  # a TicketCreatedV1 always carries its ticket
        ticket = TicketFact(
            ticket_id=ticket_id, feedback_id=str(snapshot.feedback_id) if snapshot.feedback_id else None,
            created_at=event.occurred_at, team=snapshot.team, category=snapshot.category,
            sentiment=snapshot.sentiment, priority=snapshot.priority, customer_id=snapshot.customer.id,
            tier=snapshot.customer.tier, assignee=snapshot.assignee, status=snapshot.status, resolutions=0,
            reopens=0, reassignments=0, breaches=0, agent_replies=0)
        add_fact(session, TicketFact, ticket_id, ticket)
        await ticket_contribution(session, ticket, {"tickets": 1,
                                                    "tickets_negative": int(snapshot.sentiment == "negative")})
        return
    if ticket is None:  # an event of a ticket created before the stream's retention: nothing to attach it to
        return
    if isinstance(event, TicketRecategorizedV1):
        ticket.category = event.category
        return

    metrics: dict[str, float] = {}
    previous_status = ticket.status
    if snapshot is not None:
        ticket.status = snapshot.status
        ticket.team = snapshot.team
    if isinstance(event, TicketAssignedV1):
        if ticket.assignee is not None and event.assignee != ticket.assignee:
            ticket.reassignments += 1
            metrics["reassignments"] = 1
        ticket.assignee = event.assignee
    elif isinstance(event, TicketSlaBreachedV1):
        ticket.breaches += 1
        metrics["sla_breaches"] = 1
    elif isinstance(event, TicketResolvedV1):
        ticket.resolutions += 1
        if ticket.resolutions == 1:
            ticket.resolved_at = event.resolved_at
            metrics.update(resolved=1, resolution_sum_h=minutes_between(ticket.created_at, event.resolved_at) / 60,
                           resolution_n=1)
        elif previous_status in CLOSED_STATUSES:  # resolved again without an event showing it reopened
            metrics["reopened"] = 1
            ticket.reopens += 1
        ticket.status = "resolved"
    elif isinstance(event, TicketRepliedV1) and event.author_type == "agent":
        ticket.agent_replies += 1
        metrics["agent_replies"] = 1
        if ticket.first_response_at is None:
            ticket.first_response_at = event.occurred_at
            metrics.update(frt_sum_min=minutes_between(ticket.created_at, event.occurred_at), frt_n=1)
    elif isinstance(event, TicketCsatReceivedV1):
        previous = ticket.csat
        ticket.csat = event.score
        if previous is None:
            metrics.update(rated=1, csat_n=1)
        else:  # a later rating replaces the earlier one: move the sums, do not count a second rating
            metrics.update(csat_sum=-previous, csat_low=-int(previous <= 2), rated_satisfied=-int(previous >= 4))
        metrics["csat_sum"] = metrics.get("csat_sum", 0) + event.score
        metrics["csat_low"] = metrics.get("csat_low", 0) + int(event.score <= 2)
        metrics["rated_satisfied"] = metrics.get("rated_satisfied", 0) + int(event.score >= 4)
    if previous_status in CLOSED_STATUSES and ticket.status not in CLOSED_STATUSES:
        ticket.reopens += 1
        metrics["reopened"] = 1
    if metrics:
        await ticket_contribution(session, ticket, metrics)


# --- notifications ---------------------------------------------------------------------------------


def record_notification(session: AsyncSession, event: Event) -> None:
    if isinstance(event, NotificationDeliveredV1):
        contribute(session, event.occurred_at, {}, {"deliveries": 1})
    elif isinstance(event, NotificationFailedV1):
        contribute(session, event.occurred_at, {}, {"deliveries_failed": 1})


async def clear_read_model(session: AsyncSession, consumers: list[str]) -> None:
    """Everything rebuilt by a replay (not what was raised: a replay must not alert twice)."""
    from insights.models import Aggregate, InboxMessage

    for model in (Aggregate.__table__, FeedbackFact, TicketFact, PendingContribution, CustomerFact, NeedMention):
        await session.execute(delete(model))
    await session.execute(delete(InboxMessage).where(InboxMessage.consumer.in_(consumers)))


async def count_facts(session: AsyncSession, fact: type[FeedbackFact] | type[TicketFact]) -> int:
    """How many feedback items (or tickets) the read model holds."""
    return await session.scalar(select(func.count()).select_from(fact)) or 0
