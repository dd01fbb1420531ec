"""Accepting feedback: the use case that owns the transaction (feedback row + outbox event)."""

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import uuid4

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.errors import FieldError, ProblemError
from closedloop.events import CustomerRef, FeedbackReceivedV1
from ingest.models import Feedback, IdempotencyKey, outbox
from ingest.schemas import FeedbackCreate


@dataclass(frozen=True)
class Accepted:
    feedback: Feedback
    duplicate: bool


def _request_hash(body: FeedbackCreate) -> str:
    return hashlib.sha256(json.dumps(body.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


async def accept_feedback(session: AsyncSession, body: FeedbackCreate, *, idempotency_key: str | None,
                          max_text_chars: int) -> Accepted:
    if len(body.text) > max_text_chars:
        raise ProblemError(422, "Request validation failed", f"body.text: longer than {max_text_chars} characters",
                           slug="validation-error",
                           errors=[FieldError(field="body.text", message=f"at most {max_text_chars} characters")])
    request_hash = _request_hash(body)
    earlier = await _earlier_submission(session, body, idempotency_key, request_hash)
    if earlier is not None:
        return Accepted(earlier, duplicate=True)

    now = datetime.now(UTC)
    feedback = Feedback(
        id=str(uuid4()), channel=body.channel, text=body.text, subject=body.subject,
        customer_id=body.customer.id, customer_tier=body.customer.tier.lower(),
        customer_email=body.customer.email, customer_name=body.customer.name,
        rating=body.rating, language=body.language, external_id=body.external_id, extra=body.metadata,
        status="received", received_at=now, updated_at=now,
    )
    session.add(feedback)
    if idempotency_key:
        session.add(IdempotencyKey(key=idempotency_key, request_hash=request_hash,
                                   feedback_id=feedback.id, created_at=now))
    outbox.add(session, FeedbackReceivedV1(
        feedback_id=feedback.id, channel=body.channel, text=body.text, subject=body.subject,
        customer=CustomerRef(id=feedback.customer_id, tier=feedback.customer_tier,
                             email=feedback.customer_email, name=feedback.customer_name),
        rating=body.rating, language=body.language, external_id=body.external_id,
        metadata=body.metadata, received_at=now,
    ))
    try:
        await session.commit()
    except IntegrityError:
        # A concurrent request with the same key or source id won the race: answer as it did.
        await session.rollback()
        earlier = await _earlier_submission(session, body, idempotency_key, request_hash)
        if earlier is None:
            raise
        return Accepted(earlier, duplicate=True)
    return Accepted(feedback, duplicate=False)


async def _earlier_submission(session: AsyncSession, body: FeedbackCreate, idempotency_key: str | None,
                              request_hash: str) -> Feedback | None:
    if idempotency_key:
        record = await session.get(IdempotencyKey, idempotency_key)
        if record is not None:
            if record.request_hash != request_hash:
                raise ProblemError(409, "Idempotency-Key reused",
                                   "This Idempotency-Key was used with a different request body.",
                                   slug="idempotency-key-reused",
                                   errors=[FieldError(field="header.Idempotency-Key",
                                                      message="already used with another body")])
            return await session.get(Feedback, record.feedback_id)
    if body.external_id:
        return await session.scalar(
            select(Feedback).where(Feedback.channel == body.channel, Feedback.external_id == body.external_id)
        )
    return None
