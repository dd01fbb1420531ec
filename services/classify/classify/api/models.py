"""Model versions: training runs (queued here, run by `classify.training_runs`), their metrics, and which one
classifies."""

from typing import Annotated

from fastapi import Query

from classify import model_versions
from classify.api.deps import EngineDep, SyncDep, TrainerDep
from classify.ml.engine import ClassificationEngine
from classify.models import ModelVersion
from classify.registry import active_model_row
from classify.schemas.models import ActiveModelPublic, ModelIn, ModelPage, ModelPublic
from classify.training_runs import queue_training
from closedloop.api import SessionDep, api_router, get_or_404
from closedloop.auth import needs
from closedloop.errors import problem_responses
from closedloop.pagination import Cursor

router = api_router("training", 400, 413)


def model_public(row: ModelVersion) -> ModelPublic:
    return ModelPublic.model_validate(row, from_attributes=True)


def active_public(engine: ClassificationEngine, row: ModelVersion | None) -> ActiveModelPublic:
    """What answers now: the trained model `row`, or the zero-shot fallback when there is none."""
    return ActiveModelPublic(mode="trained" if row is not None else "zero-shot",
                             model_version=engine.active.model_version,
                             taxonomy_version=engine.active.taxonomy.version,
                             model=model_public(row) if row is not None else None)


@router.post("/models", dependencies=needs("models:write"),
             status_code=202, response_model=ModelPublic, responses=problem_responses(409),
             summary="Start a training run in the background",
             description="Trains on the stored examples whose labels are leaves of the active taxonomy. Poll "
                         "`GET /v1/models/{id}` for `status` and `progress`; a ready model carries its held-out "
                         "metrics and is activated with `POST /v1/models/{id}/activate` (or at once with "
                         "`activate: true`).")
async def create_model(body: ModelIn, session: SessionDep, engine: EngineDep, trainer: TrainerDep) -> ModelPublic:
    async with session.begin():
        row = await queue_training(session, engine, body)
    trainer.wake()
    return model_public(row)


@router.get("/models", dependencies=needs("reports:read"),
            response_model=ModelPage, summary="Every model version, newest first")
async def list_models(session: SessionDep, limit: Annotated[int, Query(ge=1, le=500)] = 50,
                      cursor: Cursor = None) -> ModelPage:
    page = await model_versions.models_page(session, limit, cursor)
    return ModelPage(items=[model_public(r) for r in page.rows], total=page.total, next_cursor=page.next_cursor)


@router.get("/models/active", dependencies=needs("reports:read"), response_model=ActiveModelPublic,
            summary="What answers now: a trained model, or the zero-shot fallback")
async def get_active(session: SessionDep, engine: EngineDep) -> ActiveModelPublic:
    return active_public(engine, await active_model_row(session))


@router.post("/models/rollback", dependencies=needs("models:write"), response_model=ActiveModelPublic,
             summary="Activate the model that was active before the current one (zero-shot if none)")
async def rollback(session: SessionDep, engine: EngineDep, sync: SyncDep) -> ActiveModelPublic:
    target = await model_versions.roll_back(session)
    await sync.refresh()
    return active_public(engine, target)


@router.post("/models/deactivate", dependencies=needs("models:write"), response_model=ActiveModelPublic,
             summary="Deactivate every trained model: the zero-shot classifier answers")
async def deactivate(session: SessionDep, engine: EngineDep, sync: SyncDep) -> ActiveModelPublic:
    await model_versions.deactivate_all(session)
    await sync.refresh()
    return active_public(engine, None)


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
    row = await model_versions.activate(session, model_id)
    await sync.refresh()
    return model_public(row)
