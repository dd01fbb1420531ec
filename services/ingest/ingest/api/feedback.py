from typing import Annotated

from fastapi import Header, Request, Response

from closedloop.api import SessionDep, api_router
from closedloop.errors import NotFound, problem_responses
from ingest.intake import accept_feedback
from ingest.models import Feedback
from ingest.schemas import CustomerPublic, FeedbackAccepted, FeedbackCreate, FeedbackPublic

router = api_router("feedback", 400, 413)


@router.post("/feedback", status_code=202, response_model=FeedbackAccepted,
             responses={200: {"model": FeedbackAccepted, "description": "A repeat of an earlier submission."},
                        **problem_responses(409)},
             summary="Submit one piece of feedback")
async def submit_feedback(
    body: FeedbackCreate, session: SessionDep, request: Request, response: Response,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)] = None,
) -> FeedbackAccepted:
    """Accepts the feedback (202) and hands it to classification. Sending the same
    `Idempotency-Key` with the same body again, or the same `external_id` on the same channel,
    answers 200 with the original id instead of storing it twice."""
    accepted = await accept_feedback(session, body, idempotency_key=idempotency_key,
                                     max_text_chars=request.app.state.settings.max_text_chars)
    if accepted.duplicate:
        response.status_code = 200
    feedback = accepted.feedback
    response.headers["Location"] = f"/v1/feedback/{feedback.id}"
    return FeedbackAccepted(id=feedback.id, status=feedback.status, duplicate=accepted.duplicate,
                            status_url=f"/v1/feedback/{feedback.id}")


@router.get("/feedback/{feedback_id}", response_model=FeedbackPublic, responses=problem_responses(404),
            summary="Feedback and its progress")
async def get_feedback(feedback_id: str, session: SessionDep) -> FeedbackPublic:
    feedback = await session.get(Feedback, feedback_id)
    if feedback is None:
        raise NotFound("Feedback", feedback_id)
    return to_public(feedback)


def to_public(feedback: Feedback) -> FeedbackPublic:
    return FeedbackPublic(
        id=feedback.id, channel=feedback.channel, text=feedback.text, subject=feedback.subject,
        customer=CustomerPublic(id=feedback.customer_id, tier=feedback.customer_tier,
                                email=feedback.customer_email, name=feedback.customer_name),
        rating=feedback.rating, language=feedback.language, external_id=feedback.external_id,
        metadata=feedback.extra, status=feedback.status, category=feedback.category,
        sentiment=feedback.sentiment, ticket_id=feedback.ticket_id,
        received_at=feedback.received_at, updated_at=feedback.updated_at,
    )
