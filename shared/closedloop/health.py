"""`/livez`: the process answers. `/readyz`: the database and the broker answer too."""

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from closedloop.auth import public
from closedloop.db import ping

# Probes of the orchestrator: no credentials, and they tell nothing but up or down.
router = APIRouter(tags=["health"], dependencies=[Depends(public("liveness and readiness probes"))])


@router.get("/livez", summary="Liveness: the process is up")
async def livez() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: database and broker reachable",
            responses={503: {"description": "A dependency is unavailable."}})
async def readyz(request: Request) -> JSONResponse:
    runtime = request.app.state.runtime
    checks: dict[str, str] = {}
    try:
        await ping(runtime.engine)
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    checks["broker"] = "ok" if runtime.broker.is_connected else "error: not connected"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse({"status": "ok" if ready else "unavailable", "checks": checks},
                        status_code=200 if ready else 503)
