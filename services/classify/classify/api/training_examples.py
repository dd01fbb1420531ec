"""Training examples: labelled texts the trained category model learns from (`POST /v1/models` trains on them)."""

from typing import Annotated

from fastapi import Query
from sqlalchemy import delete, func, select

from classify.api.deps import EngineDep
from classify.examples import add_examples
from classify.models import TrainingExample
from classify.schemas.training_examples import (
    TrainingExamplePage,
    TrainingExamplePublic,
    TrainingExamplesAccepted,
    TrainingExamplesIn,
)
from closedloop.api import SessionDep, api_router
from closedloop.auth import needs
from closedloop.errors import FieldError, NotFound, ProblemError, problem_responses
from closedloop.limits import DB_INT_MAX, DbId
from closedloop.pagination import Cursor, keyset_page

router = api_router("training", 400, 413)

MAX_FIELD_ERRORS = 50


@router.post("/training-examples", dependencies=needs("models:write"),
             status_code=201, response_model=TrainingExamplesAccepted,
             summary="Add labelled examples in bulk (up to 20,000 per call)",
             description="Labels are leaves of the active taxonomy; unknown labels are a 422 naming each "
                         "(`body.examples[i].label`) and nothing is stored. An example already stored with the "
                         "same text and label is ignored (counted in `duplicates`).")
async def post_examples(body: TrainingExamplesIn, session: SessionDep, engine: EngineDep) -> TrainingExamplesAccepted:
    leaves = {leaf.key for leaf in engine.active.taxonomy.leaves()}
    unknown = [(i, e.label) for i, e in enumerate(body.examples) if e.label not in leaves]
    if unknown:
        names = sorted({label for _, label in unknown})
        raise ProblemError(
            422, "Unknown labels",
            f"{len(unknown)} example(s) have labels that are not leaves of the active taxonomy "
            f"{engine.active.taxonomy.version}: {', '.join(names[:20])}{' …' if len(names) > 20 else ''}",
            slug="validation-error",
            errors=[FieldError(field=f"body.examples[{i}].label", message=f"unknown taxonomy leaf {label!r}")
                    for i, label in unknown[:MAX_FIELD_ERRORS]])
    async with session.begin():
        accepted, duplicates = await add_examples(session, [(e.text, e.label) for e in body.examples], "api")
        total = await session.scalar(select(func.count()).select_from(TrainingExample)) or 0
    return TrainingExamplesAccepted(accepted=accepted, duplicates=duplicates, total=total)


@router.get("/training-examples", dependencies=needs("models:write"),
            response_model=TrainingExamplePage, summary="Stored training examples, oldest first")
async def list_examples(session: SessionDep, label: str | None = None,
                        source: Annotated[str | None, Query(pattern="^(api|recategorized)$")] = None,
                        limit: Annotated[int, Query(ge=1, le=1000)] = 100, cursor: Cursor = None,
                        after: Annotated[int, Query(ge=0, le=DB_INT_MAX, deprecated=True,
                                                    description="Only examples with a larger id (the older way "
                                                                "to page: use `cursor`)")] = 0,
                        ) -> TrainingExamplePage:
    query = select(TrainingExample)
    if label is not None:
        query = query.where(TrainingExample.label == label)
    if source is not None:
        query = query.where(TrainingExample.source == source)
    # `total` counts the filters' rows over all pages, not only those after the deprecated `after`.
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    page = await keyset_page(session, query.where(TrainingExample.id > after), order=(TrainingExample.id,),
                             limit=limit, cursor=cursor, descending=False, count=False)
    per_label = dict((await session.execute(select(TrainingExample.label, func.count())
                                            .group_by(TrainingExample.label))).tuples().all())
    return TrainingExamplePage(
        items=[TrainingExamplePublic.model_validate(r, from_attributes=True) for r in page.rows],
        total=total, next_cursor=page.next_cursor, labels=per_label)


@router.delete("/training-examples/{example_id}", dependencies=needs("models:write"),
               status_code=204, responses=problem_responses(404),
               summary="Delete one training example")
async def delete_example(example_id: DbId, session: SessionDep) -> None:
    async with session.begin():
        result = await session.execute(delete(TrainingExample).where(TrainingExample.id == example_id))
        if result.rowcount == 0:
            raise NotFound("Training example", example_id)
