"""Triage thresholds and per-field modes (autofill, suggest, off), stored in the database."""


from classify.api.deps import SettingsDep, SyncDep
from classify.registry import load_config, save_config
from classify.schemas.config import EngineConfigIn, EngineConfigPublic
from closedloop.api import RuntimeDep, SessionDep, api_router
from closedloop.auth import needs

router = api_router("config", 400)


@router.get("/config", dependencies=needs("reports:read"), response_model=EngineConfigPublic,
            summary="Triage thresholds and per-field modes in force")
async def get_config(session: SessionDep, settings: SettingsDep) -> EngineConfigPublic:
    return EngineConfigPublic(**await load_config(session, settings))


@router.put("/config", dependencies=needs("config:write"), response_model=EngineConfigPublic,
            summary="Change thresholds or per-field modes (fields left out keep their value)",
            description="Modes per field (`category`, `sentiment`, `severity`, `language`): `autofill` sets the "
                        "field, `suggest` leaves it to a human and stores the prediction under `suggestions`, "
                        "`off` does neither. Stored in the database: every replica applies it within "
                        "`CLASSIFY_MODEL_POLL_SECONDS`, this one at once.")
async def put_config(body: EngineConfigIn, session: SessionDep, runtime: RuntimeDep, settings: SettingsDep,
                     sync: SyncDep) -> EngineConfigPublic:
    async with session.begin():
        await save_config(session, body.model_dump(exclude_none=True))
    await sync.refresh()
    async with runtime.sessions() as fresh:
        return EngineConfigPublic(**await load_config(fresh, settings))
