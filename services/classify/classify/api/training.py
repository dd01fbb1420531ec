from typing import Annotated

from fastapi import Query
from sqlalchemy import delete, func, select

from classify.api.deps import EngineDep, SyncDep, TrainerDep
from classify.examples import add_examples
from classify.models import ModelVersion, TrainingExample
from classify.registry import activate_model, active_model_row, previous_model
from classify.schemas import (
    ActiveModelPublic,
    ModelCreate,
    ModelPublic,
    TrainingExamplePage,
    TrainingExamplePublic,
    TrainingExamplesAccepted,
    TrainingExamplesIn,
)
from classify.trainer import queue_training
from closedloop.api import SessionDep, api_router, get_or_404
from closedloop.auth import needs
from closedloop.errors import FieldError, NotFound, ProblemError, conflict, problem_responses
from closedloop.limits import DB_INT_MAX, DbId

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
            response_model=TrainingExamplePage, summary="Stored training examples")
async def list_examples(session: SessionDep, label: str | None = None,
                        source: Annotated[str | None, Query(pattern="^(api|recategorized)$")] = None,
                        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                        after: Annotated[int, Query(ge=0, le=DB_INT_MAX, description="Cursor: the last id seen")] = 0,
                        ) -> TrainingExamplePage:
    query = select(TrainingExample).where(TrainingExample.id > after)
    count = select(func.count()).select_from(TrainingExample)
    if label is not None:
        query, count = query.where(TrainingExample.label == label), count.where(TrainingExample.label == label)
    if source is not None:
        query, count = query.where(TrainingExample.source == source), count.where(TrainingExample.source == source)
    rows = list(await session.scalars(query.order_by(TrainingExample.id).limit(limit)))
    per_label = dict((await session.execute(select(TrainingExample.label, func.count())
                                            .group_by(TrainingExample.label))).tuples().all())
    return TrainingExamplePage(
        items=[TrainingExamplePublic.model_validate(r, from_attributes=True) for r in rows],
        total=await session.scalar(count) or 0, next_after=rows[-1].id if len(rows) == limit else None,
        labels=per_label)


@router.delete("/training-examples/{example_id}", dependencies=needs("models:write"),
               status_code=204, responses=problem_responses(404),
               summary="Delete one training example")
async def delete_example(example_id: DbId, session: SessionDep) -> None:
    async with session.begin():
        result = await session.execute(delete(TrainingExample).where(TrainingExample.id == example_id))
        if result.rowcount == 0:
            raise NotFound("Training example", example_id)


def model_public(row: ModelVersion) -> ModelPublic:
    return ModelPublic.model_validate(row, from_attributes=True)


@router.post("/models", dependencies=needs("models:write"),
             status_code=202, response_model=ModelPublic, responses=problem_responses(409),
             summary="Start a training run in the background",
             description="Trains on the stored examples whose labels are leaves of the active taxonomy. Poll "
                         "`GET /v1/models/{id}` for `status` and `progress`; a ready model carries its held-out "
                         "metrics and is activated with `POST /v1/models/{id}/activate` (or at once with "
                         "`activate: true`).")
async def create_model(body: ModelCreate, session: SessionDep, engine: EngineDep, trainer: TrainerDep) -> ModelPublic:
    async with session.begin():
        row = await queue_training(session, engine, body)
    trainer.wake()
    return model_public(row)


@router.get("/models", dependencies=needs("reports:read"),
            response_model=list[ModelPublic], summary="Every model version, newest first")
async def list_models(session: SessionDep, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[ModelPublic]:
    rows = await session.scalars(select(ModelVersion).order_by(ModelVersion.version.desc()).limit(limit))
    return [model_public(r) for r in rows]


@router.get("/models/active", dependencies=needs("reports:read"), response_model=ActiveModelPublic,
            summary="What answers now: a trained model, or the zero-shot fallback")
async def get_active(session: SessionDep, engine: EngineDep) -> ActiveModelPublic:
    row = await active_model_row(session)
    return ActiveModelPublic(mode="trained" if row is not None else "zero-shot",
                             model_version=engine.active.model_version,
                             taxonomy_version=engine.active.taxonomy.version,
                             model=model_public(row) if row is not None else None)


@router.post("/models/rollback", dependencies=needs("models:write"), response_model=ActiveModelPublic,
             summary="Activate the model that was active before the current one (zero-shot if none)")
async def rollback(session: SessionDep, engine: EngineDep, sync: SyncDep) -> ActiveModelPublic:
    async with session.begin():
        current = await active_model_row(session)
        target = await previous_model(session, current)
        await activate_model(session, target)
    await sync.refresh()
    return ActiveModelPublic(mode="trained" if target is not None else "zero-shot",
                             model_version=engine.active.model_version,
                             taxonomy_version=engine.active.taxonomy.version,
                             model=model_public(target) if target is not None else None)


@router.post("/models/deactivate", dependencies=needs("models:write"), response_model=ActiveModelPublic,
             summary="Deactivate every trained model: the zero-shot classifier answers")
async def deactivate(session: SessionDep, engine: EngineDep, sync: SyncDep) -> ActiveModelPublic:
    async with session.begin():
        await activate_model(session, None)
    await sync.refresh()
    return ActiveModelPublic(mode="zero-shot", model_version=engine.active.model_version,
                             taxonomy_version=engine.active.taxonomy.version, model=None)


@router.get("/models/{model_id}", dependencies=needs("reports:read"),
            response_model=ModelPublic, responses=problem_responses(404),
            summary="One model version: status, progress and held-out metrics")
async def get_model(model_id: str, session: SessionDep) -> ModelPublic:
    row = await get_or_404(session, ModelVersion, model_id, "Model")
    return model_public(row)


@router.post("/models/{model_id}/activate", dependencies=needs("models:write"),
             response_model=ModelPublic, responses=problem_responses(404, 409),
             summary="Make a ready model the one that classifies (roll back by activating an older one)")
async def activate(model_id: str, session: SessionDep, sync: SyncDep) -> ModelPublic:
    async with session.begin():
        row = await get_or_404(session, ModelVersion, model_id, "Model")
        if row.status != "ready":
            raise conflict(f"Model {model_id} is {row.status}; only a ready model can be activated.",
                           slug="model-not-ready", title="Model not ready")
        await activate_model(session, row)
    await sync.refresh()
    return model_public(row)
