from fastapi import Request

from classify.models import ClassificationRecord
from classify.schemas import (
    ClassificationPublic,
    ClassifyRequest,
    Prediction,
    TaxonomyNodePublic,
    TaxonomyPublic,
)
from closedloop.api import SessionDep, api_router
from closedloop.errors import NotFound, problem_responses

router = api_router("classifications", 400)


@router.get("/classifications/{feedback_id}", response_model=ClassificationPublic,
            responses=problem_responses(404), summary="The classification of one feedback item")
async def get_classification(feedback_id: str, session: SessionDep) -> ClassificationPublic:
    record = await session.get(ClassificationRecord, feedback_id)
    if record is None:
        raise NotFound("Classification", feedback_id)
    return ClassificationPublic.model_validate(record, from_attributes=True)


@router.post("/classify", response_model=list[Prediction],
             summary="Classify texts without storing anything (preview)")
async def classify_texts(body: ClassifyRequest, request: Request) -> list[Prediction]:
    results = await request.app.state.engine.classify_async(body.texts)
    return [Prediction(
        category=r.category.category, category_label=r.category.label, top_level=r.category.top_level,
        confidence=round(r.category.confidence, 4),
        alternatives=[(k, round(p, 4)) for k, p in r.category.alternatives],
        sentiment=r.sentiment.label, sentiment_score=round(r.sentiment.score, 4),
        polarity=round(r.sentiment.polarity, 4),
    ) for r in results]


@router.get("/taxonomy", response_model=TaxonomyPublic, summary="The active taxonomy")
async def get_taxonomy(request: Request) -> TaxonomyPublic:
    taxonomy = request.app.state.taxonomy
    return TaxonomyPublic(version=taxonomy.version, nodes=[
        TaxonomyNodePublic(key=n.key, name=n.name, description=n.description, parent=n.parent,
                           examples=list(n.examples)) for n in taxonomy.nodes
    ])
