"""Channel webhooks: e-mail (raw MIME), app-store reviews, chat transcripts, survey answers."""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from closedloop.api import SessionDep, api_router
from closedloop.auth import Principal, authenticated_baseline, require
from closedloop.errors import ProblemError, problem_responses
from closedloop.ratelimit import rate_limit
from ingest.api.deps import SettingsDep
from ingest.api.feedback import IdempotencyKeyHeader, answer
from ingest.channels import (
    SIGNATURE_DESCRIPTION,
    SIGNATURE_HEADER,
    ChannelName,
    accept_email,
    parse_email,
    verify_signature,
)
from ingest.intake import accept_feedback
from ingest.schemas.channels import AppReviewIn, ChatTranscriptIn, SurveyAnswerIn
from ingest.schemas.feedback import FeedbackAccepted

ACCEPTED = {200: {"model": FeedbackAccepted, "description": "A repeat of an earlier submission."},
            **problem_responses(409)}
MIME_TYPES = ("message/rfc822", "text/plain", "application/octet-stream")

# JSON channels share the JSON guard (415 for anything else); raw e-mail needs its own router.
# Per key and per client IP (closedloop.ratelimit; INGEST_RATE_LIMIT_*).
router = api_router("channels", 400, 413, 429, dependencies=[Depends(rate_limit("ingest"))])
raw_router = APIRouter(prefix="/v1", tags=["channels"],
                       dependencies=[Depends(authenticated_baseline), Depends(rate_limit("ingest"))],
                       responses=problem_responses(401, 403, 413, 415, 422, 429))


def may_send_on(channel: str) -> Callable[..., Awaitable[Principal]]:
    """feedback:write, and — for a key restricted to some channels — this channel among them."""

    async def check(principal: Annotated[Principal, Depends(require("feedback:write"))]) -> Principal:
        principal.ensure_channel(channel, field_name="path")
        return principal

    return check


def require_signature(channel: ChannelName) -> Callable[..., Awaitable[None]]:
    async def check(
        request: Request,
        settings: SettingsDep,
        signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER, description=SIGNATURE_DESCRIPTION)] = None,
    ) -> None:
        secret = settings.channel_secrets.get(channel)
        if secret:
            verify_signature(secret, signature, await request.body(), settings.signature_tolerance_seconds)

    return check


def channel_guards(channel: ChannelName) -> list[Any]:
    return [Depends(may_send_on(channel)), Depends(require_signature(channel))]


@raw_router.post(
    "/channels/email", status_code=202, response_model=FeedbackAccepted, responses=ACCEPTED,
    dependencies=channel_guards("email"),
    summary="Inbound e-mail (raw MIME)",
    openapi_extra={"requestBody": {"required": True, "description": "The whole message as received (RFC 5322).",
                                   "content": {mime: {"schema": {"type": "string", "format": "binary"}}
                                               for mime in MIME_TYPES}}},
)
async def inbound_email(
    settings: SettingsDep, request: Request, session: SessionDep, response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
    tier: Annotated[str | None, Query(min_length=1, max_length=50,
                                      description="Customer tier when the sender has no profile.")] = None,
) -> FeedbackAccepted:
    """Send the raw message (`Content-Type: message/rfc822`) as your mail provider's inbound hook
    delivers it. The subject, the sender, the thread (first of `References`, else `In-Reply-To`,
    else `Message-ID`) and the body text (the text/plain part, or the text of the HTML part) become
    one feedback item; quoted earlier messages and the signature are removed. The sender is matched
    to a customer profile by e-mail address; without one the address is the customer id. A repeated
    `Message-ID` answers 200 with the original id."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in MIME_TYPES:
        raise ProblemError(415, "Unsupported Media Type",
                           f"Send the raw message as message/rfc822 (got {content_type or 'no content type'}).",
                           slug="unsupported-media-type")
    parsed = parse_email(await request.body())
    accepted = await accept_email(session, parsed, tier, idempotency_key=idempotency_key, settings=settings)
    return answer(accepted, response)


@router.post("/channels/app-review", status_code=202, response_model=FeedbackAccepted, responses=ACCEPTED,
             dependencies=channel_guards("app_review"),
             summary="App-store review")
async def app_review(body: AppReviewIn, settings: SettingsDep, session: SessionDep, response: Response,
                     idempotency_key: IdempotencyKeyHeader = None) -> FeedbackAccepted:
    """A review from the App Store, Google Play or another store: stars, title, text, app version and
    platform (taken from the store when not given). A repeated `review_id` answers 200."""
    accepted = await accept_feedback(session, body.record(), idempotency_key=idempotency_key,
                                     settings=settings)
    return answer(accepted, response)


@router.post("/channels/chat", status_code=202, response_model=FeedbackAccepted, responses=ACCEPTED,
             dependencies=channel_guards("chat"),
             summary="Chat transcript")
async def chat_transcript(body: ChatTranscriptIn, settings: SettingsDep, session: SessionDep, response: Response,
                          idempotency_key: IdempotencyKeyHeader = None) -> FeedbackAccepted:
    """A finished chat conversation. The customer's messages become the feedback text (the agent's and
    bot's are counted in `metadata`); the conversation id is the thread and source id."""
    accepted = await accept_feedback(session, body.record(), idempotency_key=idempotency_key,
                                     settings=settings)
    return answer(accepted, response)


@router.post("/channels/survey", status_code=202, response_model=FeedbackAccepted, responses=ACCEPTED,
             dependencies=channel_guards("survey"),
             summary="Survey answer (NPS or CSAT)")
async def survey_answer(body: SurveyAnswerIn, settings: SettingsDep, session: SessionDep, response: Response,
                        idempotency_key: IdempotencyKeyHeader = None) -> FeedbackAccepted:
    """One answer: `nps` 0-10 or `csat` 1-5, with an optional comment (the score is also the
    item's `rating`). A repeated `response_id` answers 200."""
    accepted = await accept_feedback(session, body.record(), idempotency_key=idempotency_key,
                                     settings=settings)
    return answer(accepted, response)
