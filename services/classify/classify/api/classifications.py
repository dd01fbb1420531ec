"""Classify text on demand, and read the classifications stored for feedback items."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Query

from classify import classifications
from classify.api.deps import EngineDep
from classify.ml.engine import ClassificationEngine, Result, decide
from classify.models import ClassificationRecord
from classify.schemas.classifications import (
    Alternative,
    ClassificationPage,
    ClassificationPublic,
    ClassifyBatchResult,
    ClassifyIn,
    ClassifyResult,
    Neighbour,
)
from closedloop.api import SessionDep, api_router, get_or_404
from closedloop.auth import needs
from closedloop.errors import problem_responses
from closedloop.events import Severity
from closedloop.pagination import Cursor

router = api_router("classifications", 400, 413)
PREVIEW_CHUNK = 128


@router.get("/classifications/{feedback_id}", dependencies=needs("feedback:read"), response_model=ClassificationPublic,
            responses=problem_responses(404), summary="The classification of one feedback item")
async def get_classification(feedback_id: str, session: SessionDep) -> ClassificationPublic:
    record = await get_or_404(session, ClassificationRecord, feedback_id, "Classification")
    return ClassificationPublic.model_validate(record, from_attributes=True)


@router.get("/classifications", dependencies=needs("feedback:read"), response_model=ClassificationPage,
            summary="Recent classifications, newest first (e.g. the triage queue: `needs_triage=true`)",
            description="`total` is null: counting would scan every stored classification.")
async def list_classifications(session: SessionDep, needs_triage: bool | None = None,
                               category: str | None = None, severity: Severity | None = None,
                               limit: Annotated[int, Query(ge=1, le=500)] = 50, cursor: Cursor = None,
                               before: Annotated[datetime | None, Query(
                                   deprecated=True, description="Only classifications created before this time "
                                                                "(the older way to page: use `cursor`)")] = None,
                               ) -> ClassificationPage:
    page = await classifications.classifications_page(session, needs_triage, category, severity, limit, cursor,
                                                      before)
    return ClassificationPage(items=[ClassificationPublic.model_validate(r, from_attributes=True) for r in page.rows],
                              total=None, next_cursor=page.next_cursor)


def to_public(result: Result, engine: ClassificationEngine) -> ClassifyResult:
    outcome = decide(result, engine.config)
    return ClassifyResult(
        label=outcome.category, category_label=outcome.category_label, top_level=outcome.top_level,
        confidence=outcome.confidence, needs_triage=outcome.needs_triage, calibrated=result.calibrated,
        out_of_scope=result.novel,
        alternatives=[Alternative(label=k, confidence=round(p, 4)) for k, p in result.category.alternatives],
        suggestions=outcome.suggestions, sentiment=outcome.sentiment, sentiment_score=outcome.sentiment_score,
        polarity=outcome.polarity, emotions=list(result.signals.emotions), severity=outcome.severity,
        signals=list(result.signals.signals), language=outcome.language,
        language_confidence=outcome.language_confidence,
        near_duplicates=[Neighbour(feedback_id=n.feedback_id, similarity=n.similarity)
                         for n in result.near_duplicates],
        duplicate_of=result.duplicate_of, model_version=result.model_version,
        taxonomy_version=result.taxonomy_version,
    )


@router.post("/classify", dependencies=needs("feedback:read"), response_model=ClassifyResult | ClassifyBatchResult,
             summary="Classify one text or a batch, synchronously; stores nothing",
             description="`{\"text\": ...}` answers one result; `{\"items\": [...]}` answers `{\"results\": [...]}` "
                         "in the same order. Near-duplicates are looked up among recent stored feedback.")
async def classify_texts(body: ClassifyIn, engine: EngineDep) -> ClassifyResult | ClassifyBatchResult:
    if body.items is not None:
        texts = [_joined(item.subject, item.text) for item in body.items]
    else:
        texts = [_joined(body.subject, body.text or "")]
    results = []
    now = datetime.now(UTC)
    for start in range(0, len(texts), PREVIEW_CHUNK):  # the consumer gets the model between chunks
        results.extend(await engine.classify_async(texts[start:start + PREVIEW_CHUNK], now=now))
    public = [to_public(r, engine) for r in results]
    return ClassifyBatchResult(results=public) if body.items is not None else public[0]


def _joined(subject: str | None, text: str) -> str:
    return f"{subject}. {text}" if subject else text
