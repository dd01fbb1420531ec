"""Accepting feedback: the use case that owns the transaction (feedback row + outbox event)."""

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.errors import ProblemError, conflict, field_problem
from closedloop.events import CustomerRef, FeedbackCsatAnsweredV1, FeedbackReceivedV1, FeedbackReplyReceivedV1
from ingest import replies
from ingest.cleaning import mask_pii
from ingest.models import Customer, Feedback, FeedbackDuplicate, IdempotencyKey, outbox
from ingest.schemas.feedback import DuplicateReason, FeedbackIn
from ingest.settings import IngestSettings


@dataclass(frozen=True)
class Accepted:
    feedback: Feedback
    duplicate: bool
    reason: DuplicateReason | None = None
    reply_to_ticket: str | None = None


def _request_hash(body: FeedbackIn) -> str:
    return hashlib.sha256(json.dumps(body.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


def text_fingerprint(text_: str) -> str:
    """Equal for texts that differ only in case, spacing or trailing punctuation."""
    normalised = re.sub(r"\s+", " ", text_.casefold()).strip().rstrip(".!?… ")
    return hashlib.sha256(normalised.encode()).hexdigest()


async def lock_customer(session: AsyncSession, customer_id: str) -> None:
    """Serialise this customer's writes until the transaction ends, so two concurrent requests cannot
    both pass a "not yet within the window" check. SQLite needs nothing: every transaction starts
    with BEGIN IMMEDIATE and so already runs alone."""
    if session.bind.dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(customer_id.encode()).digest()[:8], "big", signed=True)
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def _too_long(max_text_chars: int) -> ProblemError:
    return field_problem("body.text", f"at most {max_text_chars} characters",
                         detail=f"body.text: longer than {max_text_chars} characters")


async def accept_feedback(session: AsyncSession, body: FeedbackIn, *, idempotency_key: str | None,
                          settings: IngestSettings) -> Accepted:
    """Store one item with its event in one transaction, or answer the earlier item it repeats."""

    async def given(_: AsyncSession) -> FeedbackIn:
        return body

    return await accept_record(session, given, idempotency_key=idempotency_key, settings=settings)


async def accept_record(session: AsyncSession, build: Callable[[AsyncSession], Awaitable[FeedbackIn]], *,
                        idempotency_key: str | None, settings: IngestSettings) -> Accepted:
    """`accept_feedback` for a record that `build` makes from what the database holds (the e-mail channel
    looks up the sender's profile), read in the same transaction that stores the item."""
    body: FeedbackIn | None = None
    try:
        async with session.begin():
            body = await build(session)
            return await stage_feedback(session, body, idempotency_key=idempotency_key, settings=settings)
    except IntegrityError:
        # A concurrent request with the same key or source id won the race: answer as it did.
        earlier = await earlier_submission(session, body, idempotency_key) if body is not None else None
        if earlier is None:
            raise
        return earlier


async def stage_feedback(session: AsyncSession, body: FeedbackIn, *, idempotency_key: str | None,
                         settings: IngestSettings, locked: bool = False,
                         profiles: dict[str, Customer | None] | None = None) -> Accepted:
    """Everything `accept_feedback` does but the transaction (the batch runs each item in a savepoint, with
    the customers already `locked` and their `profiles` loaded in one query)."""
    if len(body.text) > settings.max_text_chars:
        raise _too_long(settings.max_text_chars)
    request_hash = _request_hash(body)
    earlier = await _earlier_submission(session, body, idempotency_key, request_hash)
    if earlier is not None:
        return earlier

    now = datetime.now(UTC)
    fingerprint = text_fingerprint(body.text)
    if not locked:
        await lock_customer(session, body.customer.id)
    same_text = await session.scalar(
        select(Feedback).where(Feedback.customer_id == body.customer.id, Feedback.text_hash == fingerprint,
                               Feedback.received_at >= now - timedelta(seconds=settings.duplicate_window_seconds))
        .order_by(Feedback.received_at).limit(1)
    )
    if same_text is not None:
        return await _record_duplicate(session, same_text, body, idempotency_key, request_hash, now)

    if profiles is not None and body.customer.id in profiles:
        profile = profiles[body.customer.id]
    else:
        profile = await session.get(Customer, body.customer.id)
    tier = (body.customer.tier or (profile.tier if profile else None) or "standard").lower()
    email = body.customer.email or (profile.email if profile else None)
    name = body.customer.name or (profile.name if profile else None)
    locale = body.customer.locale or (profile.locale if profile else None) or body.language
    value = body.customer.value if body.customer.value is not None else (profile.value if profile else None)

    masked_text, found = mask_pii(body.text)
    masked_subject = None
    if body.subject is not None:
        masked_subject, in_subject = mask_pii(body.subject)
        found = sorted(set(found) | set(in_subject))

    feedback = Feedback(
        id=str(uuid4()), channel=body.channel, text=masked_text, subject=masked_subject,
        original_text=body.text, original_subject=body.subject, pii_masked=found, text_hash=fingerprint,
        customer_id=body.customer.id, customer_tier=tier, customer_email=email, customer_name=name,
        customer_locale=locale, customer_value=value,
        rating=body.rating, language=body.language, external_id=body.external_id, thread_id=body.thread_id,
        app_version=body.app_version, platform=body.platform, region=body.region, product=body.product,
        nps=body.nps, csat=body.csat, extra=body.metadata, status="received", received_at=now, updated_at=now,
        duplicate_count=0,
    )
    session.add(feedback)
    if idempotency_key:
        session.add(IdempotencyKey(key=idempotency_key, request_hash=request_hash,
                                   feedback_id=feedback.id, created_at=now))
    customer = CustomerRef(id=feedback.customer_id, tier=tier, email=email, name=name, locale=locale, value=value)
    reply = await replies.find_ticket(session, body)
    if reply is not None:
        # An answer to one of our messages: it continues its ticket (ticketing adds it as the customer's
        # comment and reopens the ticket), so classify never sees it and no second ticket opens.
        feedback.ticket_id, feedback.status = reply.ticket_id, "ticket_opened"
        outbox.add(session, FeedbackReplyReceivedV1(
            feedback_id=UUID(feedback.id), ticket_id=UUID(reply.ticket_id), channel=body.channel, text=masked_text,
            subject=masked_subject, customer=customer, language=body.language, thread_id=body.thread_id,
            message_id=body.external_id if body.channel == "email" else None, in_reply_to=reply.in_reply_to,
            references=reply.references, matched_by=reply.matched_by, received_at=now))
        return Accepted(feedback, duplicate=False, reply_to_ticket=reply.ticket_id)
    outbox.add(session, FeedbackReceivedV1(
        feedback_id=UUID(feedback.id), channel=body.channel, text=masked_text, subject=masked_subject,
        customer=customer, rating=body.rating, language=body.language, external_id=body.external_id,
        source_id=body.external_id, thread_id=body.thread_id, app_version=body.app_version, platform=body.platform,
        region=body.region, product=body.product, nps=body.nps, csat=body.csat, pii_masked=found,
        metadata=body.metadata, received_at=now,
    ))
    about = (body.metadata or {}).get("ticket_id")
    if body.channel == "survey" and body.csat is not None and isinstance(about, str) and about.strip():
        # A CSAT survey about a ticket: ticketing records the score as that ticket's CSAT.
        outbox.add(session, FeedbackCsatAnsweredV1(
            feedback_id=UUID(feedback.id), ticket=about.strip(), score=body.csat, customer=customer, received_at=now,
            comment=None if (body.metadata or {}).get("score_only") else masked_text))
    return Accepted(feedback, duplicate=False)


async def _record_duplicate(session: AsyncSession, original: Feedback, body: FeedbackIn,
                            idempotency_key: str | None, request_hash: str, now: datetime) -> Accepted:
    session.add(FeedbackDuplicate(id=str(uuid4()), feedback_id=original.id, reason="same_text",
                                  channel=body.channel, customer_id=body.customer.id,
                                  external_id=body.external_id, received_at=now))
    original.duplicate_count = (original.duplicate_count or 0) + 1
    if idempotency_key:
        # A retry of this request answers the same way without counting the duplicate again.
        session.add(IdempotencyKey(key=idempotency_key, request_hash=request_hash,
                                   feedback_id=original.id, created_at=now))
    return Accepted(original, duplicate=True, reason="same_text")


async def earlier_submission(session: AsyncSession, body: FeedbackIn,
                             idempotency_key: str | None) -> Accepted | None:
    return await _earlier_submission(session, body, idempotency_key, _request_hash(body))


async def _earlier_submission(session: AsyncSession, body: FeedbackIn, idempotency_key: str | None,
                              request_hash: str) -> Accepted | None:
    if idempotency_key:
        record = await session.get(IdempotencyKey, idempotency_key)
        if record is not None:
            if record.request_hash != request_hash:
                raise conflict("This Idempotency-Key was used with a different request body.",
                               slug="idempotency-key-reused", title="Idempotency-Key reused",
                               field="header.Idempotency-Key", message="already used with another body")
            feedback = await session.get(Feedback, record.feedback_id)
            if feedback is not None:
                return Accepted(feedback, duplicate=True, reason="idempotency_key")
    if body.external_id:
        feedback = await session.scalar(
            select(Feedback).where(Feedback.channel == body.channel, Feedback.external_id == body.external_id)
        )
        if feedback is not None:
            return Accepted(feedback, duplicate=True, reason="source_id")
    return None
