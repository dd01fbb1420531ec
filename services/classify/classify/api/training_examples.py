"""Training examples: labelled texts the trained category model learns from (`POST /v1/models` trains on them)."""

from typing import Annotated

from fastapi import Query

from classify import examples
from classify.api.deps import EngineDep
from classify.schemas.training_examples import (
    TrainingExamplePage,
    TrainingExamplePublic,
    TrainingExamplesAccepted,
    TrainingExamplesIn,
)
from closedloop.api import SessionDep, api_router
from closedloop.auth import needs
from closedloop.errors import problem_responses
from closedloop.limits import DB_INT_MAX, DbId
from closedloop.pagination import Cursor

router = api_router("training", 400, 413)


@router.post("/training-examples", dependencies=needs("models:write"),
             status_code=201, response_model=TrainingExamplesAccepted,
             summary="Add labelled examples in bulk (up to 20,000 per call)",
             description="Labels are leaves of the active taxonomy; unknown labels are a 422 naming each "
                         "(`body.examples[i].label`) and nothing is stored. An example already stored with the "
                         "same text and label is ignored (counted in `duplicates`).")
async def post_examples(body: TrainingExamplesIn, session: SessionDep, engine: EngineDep) -> TrainingExamplesAccepted:
    added = await examples.add_labelled(session, engine.active.taxonomy, [(e.text, e.label) for e in body.examples])
    return TrainingExamplesAccepted(accepted=added.accepted, duplicates=added.duplicates, total=added.total)


@router.get("/training-examples", dependencies=needs("models:write"),
            response_model=TrainingExamplePage, summary="Stored training examples, oldest first")
async def list_examples(session: SessionDep, label: str | None = None,
                        source: Annotated[str | None, Query(pattern="^(api|recategorized)$")] = None,
                        limit: Annotated[int, Query(ge=1, le=1000)] = 100, cursor: Cursor = None,
                        after: Annotated[int, Query(ge=0, le=DB_INT_MAX, deprecated=True,
                                                    description="Only examples with a larger id (the older way "
                                                                "to page: use `cursor`)")] = 0,
                        ) -> TrainingExamplePage:
    found = await examples.examples_page(session, label, source, limit, cursor, after)
    return TrainingExamplePage(
        items=[TrainingExamplePublic.model_validate(r, from_attributes=True) for r in found.page.rows],
        total=found.total, next_cursor=found.page.next_cursor, labels=found.per_label)


@router.delete("/training-examples/{example_id}", dependencies=needs("models:write"),
               status_code=204, responses=problem_responses(404),
               summary="Delete one training example")
async def delete_example(example_id: DbId, session: SessionDep) -> None:
    await examples.delete_example(session, example_id)
