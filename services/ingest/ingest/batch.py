"""Many feedback items in one request: each validated and stored in its own transaction."""

from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from closedloop.errors import TYPE_BASE, FieldError, Problem, ProblemError
from closedloop.limits import UNSTORABLE_MESSAGE, find_unstorable
from ingest.intake import earlier_submission, lock_customer, stage_feedback
from ingest.models import Customer
from ingest.schemas.feedback import BatchItemResult, BatchResult, FeedbackIn
from ingest.settings import IngestSettings


def validation_problem(errors: list[FieldError], instance: str) -> Problem:
    return Problem(type=TYPE_BASE + "validation-error", title="Request validation failed", status=422,
                   detail="; ".join(f"{error.field}: {error.message}" for error in errors[:5]),
                   instance=instance, errors=errors)


def field_errors(exc: ValidationError, prefix: str) -> list[FieldError]:
    return [FieldError(field=".".join([prefix, *(str(part) for part in error["loc"])]),
                       message=error["msg"].removeprefix("Value error, ")) for error in exc.errors()]


async def accept_batch(sessions: async_sessionmaker[AsyncSession], items: list[Any],
                       settings: IngestSettings, instance: str) -> BatchResult:
    """Validate every item, then store the valid ones in one transaction with a savepoint per item:
    an item is stored whole or not at all, whatever happens to its neighbours, and the batch costs
    one commit instead of a thousand. If that commit fails the request fails and stores nothing, so
    sending it again is safe."""
    results: list[BatchItemResult | None] = [None] * len(items)
    valid: list[tuple[int, FeedbackIn, str | None]] = []
    for index, item in enumerate(items):
        outcome = _validate_item(index, item, settings, instance)
        if isinstance(outcome, BatchItemResult):
            results[index] = outcome
        else:
            valid.append((index, *outcome))
    if valid:
        async with sessions() as session, session.begin():
            # Take every customer's lock up front, in one order, so two batches cannot deadlock.
            customer_ids = sorted({body.customer.id for _, body, _ in valid})
            for customer_id in customer_ids:
                await lock_customer(session, customer_id)
            profiles: dict[str, Customer | None] = dict.fromkeys(customer_ids)
            for start in range(0, len(customer_ids), 500):
                found = await session.scalars(select(Customer).where(Customer.id.in_(customer_ids[start:start + 500])))
                profiles.update({customer.id: customer for customer in found})
            for index, body, key in valid:
                results[index] = await _stage_item(session, index, body, key, settings, instance, profiles)
    done = [result for result in results if result is not None]
    return BatchResult(accepted=sum(r.status == "accepted" for r in done),
                       duplicates=sum(r.status == "duplicate" for r in done),
                       rejected=sum(r.status == "rejected" for r in done), results=done)


def _validate_item(index: int, item: Any, settings: IngestSettings,
                   instance: str) -> BatchItemResult | tuple[FeedbackIn, str | None]:
    prefix = f"body.items.{index}"
    if not isinstance(item, dict):
        errors = [FieldError(field=prefix, message="each item must be a JSON object")]
        return BatchItemResult(index=index, status="rejected", problem=validation_problem(errors, instance))
    unstorable = find_unstorable(item)
    if unstorable is not None:
        errors = [FieldError(field=".".join([prefix, *map(str, unstorable)]), message=UNSTORABLE_MESSAGE)]
        return BatchItemResult(index=index, status="rejected", problem=validation_problem(errors, instance))
    item = dict(item)
    key = item.pop("idempotency_key", None)
    if key is not None and (not isinstance(key, str) or not 1 <= len(key) <= settings.idempotency_key_max_length):
        errors = [FieldError(field=f"{prefix}.idempotency_key",
                             message=f"a string of 1 to {settings.idempotency_key_max_length} characters")]
        return BatchItemResult(index=index, status="rejected", problem=validation_problem(errors, instance))
    try:
        return FeedbackIn.model_validate(item), key
    except ValidationError as exc:
        return BatchItemResult(index=index, status="rejected",
                               problem=validation_problem(field_errors(exc, prefix), instance))


async def _stage_item(session: AsyncSession, index: int, body: FeedbackIn, key: str | None,
                      settings: IngestSettings, instance: str,
                      profiles: dict[str, Customer | None]) -> BatchItemResult:
    prefix = f"body.items.{index}"
    try:
        try:
            async with session.begin_nested():
                accepted = await stage_feedback(session, body, idempotency_key=key, settings=settings, locked=True,
                                                profiles=profiles)
        except IntegrityError:
            # A concurrent request stored the same key or source id first: answer as it did.
            earlier = await earlier_submission(session, body, key)
            if earlier is None:
                raise
            accepted = earlier
    except ProblemError as exc:
        errors = [error.model_copy(update={"field": _item_field(error.field, prefix)}) for error in exc.errors or []]
        problem = Problem(type=TYPE_BASE + exc.slug if exc.slug else "about:blank", title=exc.title,
                          status=exc.status, detail=_item_detail(exc.detail, prefix), instance=instance,
                          errors=errors or None)
        return BatchItemResult(index=index, status="rejected", problem=problem)
    return BatchItemResult(index=index, status="duplicate" if accepted.duplicate else "accepted",
                           id=accepted.feedback.id, duplicate_reason=accepted.reason)


def _item_field(field: str, prefix: str) -> str:
    if field == "header.Idempotency-Key":
        return f"{prefix}.idempotency_key"
    return prefix + field.removeprefix("body") if field.startswith("body") else field


def _item_detail(detail: str | None, prefix: str) -> str | None:
    return detail.replace("body.", f"{prefix}.", 1) if detail and detail.startswith("body.") else detail
