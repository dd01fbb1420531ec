"""Feedback: one item or a batch in, and an item with its progress (classification, ticket) out."""

from typing import Annotated

from fastapi import Depends, Header, Request, Response

from closedloop.api import RuntimeDep, SessionDep, api_router, get_or_404
from closedloop.auth import Principal, needs, require
from closedloop.errors import problem_responses
from closedloop.http import PER_ITEM_VALIDATION
from closedloop.ratelimit import rate_limit
from ingest.api.deps import SettingsDep
from ingest.batch import accept_batch
from ingest.intake import Accepted, accept_feedback
from ingest.models import Feedback
from ingest.schemas.feedback import (
    BatchResult,
    FeedbackAccepted,
    FeedbackBatch,
    FeedbackIn,
    FeedbackPublic,
    to_public,
)

# Per key and per client IP (closedloop.ratelimit; INGEST_RATE_LIMIT_*).
router = api_router("feedback", 400, 413, 429, dependencies=[Depends(rate_limit("ingest"))])

IdempotencyKeyHeader = Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)]


@router.post("/feedback", status_code=202, response_model=FeedbackAccepted,
             responses={200: {"model": FeedbackAccepted, "description": "A repeat of an earlier submission."},
                        **problem_responses(409)},
             summary="Submit one piece of feedback")
async def submit_feedback(body: FeedbackIn, session: SessionDep, settings: SettingsDep, response: Response,
                          principal: Annotated[Principal, Depends(require("feedback:write"))],
                          idempotency_key: IdempotencyKeyHeader = None) -> FeedbackAccepted:
    """Accepts the feedback (202) and hands it to classification. Sending the same
    `Idempotency-Key` with the same body again, the same `external_id` on the same channel, or the
    same text from the same customer within the duplicate window (24 hours by default) answers 200
    with the original id instead of storing it twice."""
    principal.ensure_channel(body.channel)
    accepted = await accept_feedback(session, body, idempotency_key=idempotency_key,
                                     settings=settings)
    return answer(accepted, response)


def answer(accepted: Accepted, response: Response) -> FeedbackAccepted:
    if accepted.duplicate:
        response.status_code = 200
    feedback = accepted.feedback
    response.headers["Location"] = f"/v1/feedback/{feedback.id}"
    return FeedbackAccepted(id=feedback.id, status=feedback.status, duplicate=accepted.duplicate,
                            duplicate_reason=accepted.reason, status_url=f"/v1/feedback/{feedback.id}",
                            reply_to_ticket=accepted.reply_to_ticket)


@router.post("/feedback/batch", response_model=BatchResult, summary="Submit up to 1,000 feedback items",
             openapi_extra={PER_ITEM_VALIDATION: True})
async def submit_batch(body: FeedbackBatch, runtime: RuntimeDep, settings: SettingsDep, request: Request,
                       principal: Annotated[Principal, Depends(require("feedback:write"))]) -> BatchResult:
    """Each item is shaped like the body of `POST /v1/feedback`, plus an optional `idempotency_key`,
    and is validated and stored on its own (atomic per item): the answer lists, in order, whether
    each was `accepted`, a `duplicate` (with the original id and why) or `rejected` (with the
    problem details naming the field, e.g. `body.items.3.text`). A key restricted to some channels gets
    403 for the whole batch, before anything is stored, when an item is on another channel."""
    for index, item in enumerate(body.items):
        channel = item.get("channel") if isinstance(item, dict) else None
        if isinstance(channel, str):  # a missing or wrong channel is that item's own validation error
            principal.ensure_channel(channel, field_name=f"body.items.{index}.channel")
    return await accept_batch(runtime.sessions, body.items, settings,
                              request.url.path)


@router.get("/feedback/{feedback_id}", dependencies=needs("feedback:read"),
            response_model=FeedbackPublic, responses=problem_responses(404),
            summary="Feedback and its progress")
async def get_feedback(feedback_id: str, session: SessionDep) -> FeedbackPublic:
    feedback = await get_or_404(session, Feedback, feedback_id, "Feedback")
    return to_public(feedback)
