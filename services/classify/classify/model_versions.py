"""Which trained model classifies: activate a ready one, roll back to the one before, or deactivate every
model (zero-shot answers). Each use case opens its own transaction (ADR 0014); the caller refreshes the
engine after it."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from classify.models import ModelVersion
from classify.registry import activate_model, active_model_row, previous_model
from closedloop.api import get_or_404
from closedloop.errors import conflict
from closedloop.pagination import KeysetPage, keyset_page


async def activate(session: AsyncSession, model_id: str) -> ModelVersion:
    async with session.begin():
        row = await get_or_404(session, ModelVersion, model_id, "Model")
        if row.status != "ready":
            raise conflict(f"Model {model_id} is {row.status}; only a ready model can be activated.",
                           slug="model-not-ready", title="Model not ready")
        await activate_model(session, row)
    return row


async def roll_back(session: AsyncSession) -> ModelVersion | None:
    """Activate the model that was active before the current one; None when that is the zero-shot fallback."""
    async with session.begin():
        target = await previous_model(session, await active_model_row(session))
        await activate_model(session, target)
    return target


async def deactivate_all(session: AsyncSession) -> None:
    async with session.begin():
        await activate_model(session, None)


async def models_page(session: AsyncSession, limit: int, cursor: str | None) -> KeysetPage[ModelVersion]:
    """Every model version, newest first."""
    return await keyset_page(session, select(ModelVersion), order=(ModelVersion.version,), limit=limit, cursor=cursor)
