"""The FastAPI application every service is built on, and the dependencies routes share."""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop import health
from closedloop.auth import require_api_key
from closedloop.errors import NotFound, install_problem_handlers, problem_response, problem_responses
from closedloop.http import BodySizeLimit, require_json_body
from closedloop.limits import SequenceCursor, SequencePath
from closedloop.logs import setup_logging
from closedloop.messaging import deadletters
from closedloop.messaging.broker import BrokerUnavailable
from closedloop.metrics import HttpMetrics, metrics_endpoint
from closedloop.runtime import ServiceRuntime
from closedloop.telemetry import instrument_app, setup_tracing, shutdown_tracing


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.runtime.sessions() as session:
        yield session


def get_runtime(request: Request) -> ServiceRuntime:
    return request.app.state.runtime


SessionDep = Annotated[AsyncSession, Depends(get_session)]
RuntimeDep = Annotated[ServiceRuntime, Depends(get_runtime)]


def api_router(tag: str, *extra_statuses: int) -> APIRouter:
    """A router for authenticated JSON resources under /v1, with its error responses documented."""
    return APIRouter(
        prefix="/v1", tags=[tag],
        dependencies=[Depends(require_api_key), Depends(require_json_body)],
        responses=problem_responses(401, 415, 422, *extra_statuses),
    )


Setup = Callable[[ServiceRuntime, FastAPI], Awaitable[None]]


def create_service_app(runtime: ServiceRuntime, *, title: str, description: str,
                       routers: list[APIRouter], setup: Setup | None = None,
                       version: str = "0.1.0") -> FastAPI:
    settings = runtime.settings
    setup_logging(settings.service_name, settings.log_level, settings.log_json)
    setup_tracing(settings.service_name, settings.otlp_endpoint)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if setup is not None:
            await setup(runtime, app)
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()
            shutdown_tracing()

    app = FastAPI(title=title, description=description, version=version, lifespan=lifespan)
    app.state.runtime = runtime
    app.state.settings = settings
    install_problem_handlers(app)

    @app.exception_handler(BrokerUnavailable)
    async def _broker_down(request: Request, exc: BrokerUnavailable) -> JSONResponse:
        return problem_response(request, 503, "Service Unavailable", "The message broker is not reachable.",
                                slug="broker-unavailable", headers={"Retry-After": "5"})

    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(HttpMetrics, service=settings.service_name)
    app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
    app.include_router(health.router)
    for router in routers:
        app.include_router(router)
    app.include_router(_dead_letter_router())
    instrument_app(app, runtime.engine)
    return app


class DeadLetterPublic(BaseModel):
    sequence: int
    consumer: str
    original_subject: str
    event_id: str
    reason: str
    deliveries: int
    payload: str


def _dead_letter_router() -> APIRouter:
    router = api_router("dead letters", 404, 503)

    @router.get("/dead-letters", summary="List this service's dead-lettered messages")
    async def list_dead_letters(runtime: RuntimeDep, limit: Annotated[int, Query(ge=1, le=500)] = 100,
                                after: SequenceCursor = 0) -> list[DeadLetterPublic]:
        letters = await deadletters.list_dead_letters(runtime.broker, runtime.settings.service_name,
                                                      limit, after)
        return [DeadLetterPublic(**{k: getattr(d, k) for k in DeadLetterPublic.model_fields}) for d in letters]

    @router.post("/dead-letters/{sequence}/replay", status_code=202,
                 summary="Publish a dead letter again on its original subject and remove it")
    async def replay(sequence: SequencePath, runtime: RuntimeDep) -> dict[str, str | int]:
        letter = await deadletters.get_dead_letter(runtime.broker, runtime.settings.service_name, sequence)
        if letter is None:
            raise NotFound("Dead letter", sequence)
        await deadletters.replay_dead_letter(runtime.broker, letter)
        return {"status": "replayed", "sequence": sequence, "subject": letter.original_subject}

    return router
