"""The read model's state: lag behind the streams, rebuild by replay, run-time analysis settings."""


from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.api import RuntimeDep, SessionDep, api_router
from closedloop.auth import needs
from closedloop.errors import conflict
from insights import readmodel
from insights.api.deps import RebuilderDep, SettingsDep, SubscriptionsDep
from insights.config import AnalysisConfig, AnalysisConfigIn, current_config, update_config
from insights.models import FeedbackFact, TicketFact
from insights.replay import ConsumerLag, Rebuilder, consumer_lags
from insights.schemas.admin import ConsumerLagPublic, ReadModelStatus
from insights.series import watermark

router = api_router("read model", 409)


@router.get("/status", dependencies=needs("reports:read"),
            response_model=ReadModelStatus, summary="How far behind the streams the read model is")
async def get_status(runtime: RuntimeDep, subscriptions: SubscriptionsDep,
                     rebuilder: RebuilderDep) -> ReadModelStatus:
    lags = await consumer_lags(runtime, subscriptions)
    async with runtime.read_sessions() as session:  # never waits for the consumers' writes
        return await _status(rebuilder, session, lags)


async def _status(rebuilder: Rebuilder, session: AsyncSession, lags: list[ConsumerLag]) -> ReadModelStatus:
    behind = sum((lag.pending or 0) + (lag.unacknowledged or 0) for lag in lags)
    return ReadModelStatus(
        behind_messages=behind, caught_up=behind == 0 and all(lag.error is None for lag in lags),
        latest_data_at=await watermark(session),
        feedback_items=await readmodel.count_facts(session, FeedbackFact),
        tickets=await readmodel.count_facts(session, TicketFact),
        rebuilding=rebuilder.busy,
        consumers=[ConsumerLagPublic(**lag.__dict__) for lag in lags])


@router.post("/rebuild", dependencies=needs("admin"),
             status_code=202, summary="Rebuild the read model by replaying every stream")
async def rebuild(rebuilder: RebuilderDep) -> dict[str, str]:
    """Empties the read model and reads every stream again from its first message; follow it on
    `GET /v1/status`. Alerts, churn flags and opportunities already raised are kept and not raised again."""
    if rebuilder.busy:
        raise conflict("A rebuild is already running.", slug="rebuild-running")
    await rebuilder.rebuild()
    return {"status": "rebuilding"}


@router.get("/config", dependencies=needs("reports:read"),
            response_model=AnalysisConfig, summary="Anomaly sensitivity and churn rules")
async def get_config(settings: SettingsDep, session: SessionDep) -> AnalysisConfig:
    return await current_config(session, settings)


@router.put("/config", dependencies=needs("config:write"),
            response_model=AnalysisConfig, summary="Change anomaly sensitivity or churn rules")
async def put_config(body: AnalysisConfigIn, settings: SettingsDep, session: SessionDep) -> AnalysisConfig:
    """Only the fields sent change; the others keep their value."""
    async with session.begin():
        return await update_config(session, settings, body)
