"""The FastAPI application every service is built on, and the dependencies routes share."""

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.convertors import PathConvertor

from closedloop import health
from closedloop.auth import authenticated_baseline, declared_permission, public, require
from closedloop.credentials import Authenticator, CredentialSync
from closedloop.db import is_contention
from closedloop.errors import (
    FieldError,
    NotFound,
    ProblemError,
    install_problem_handlers,
    problem_response,
    problem_responses,
    unexpected_error,
)
from closedloop.http import BodySizeLimit, require_json_body
from closedloop.limits import DB_INT_MAX, PATH_PARAM_MAX_LENGTH, SequencePath, bad_path_params, path_param_rule
from closedloop.logs import setup_logging
from closedloop.messaging import deadletters
from closedloop.messaging.broker import BrokerUnavailable
from closedloop.metrics import HttpMetrics, metrics_endpoint
from closedloop.pagination import Cursor, Page, decode_cursor, encode_cursor, invalid_cursor
from closedloop.ratelimit import RateLimiter
from closedloop.runtime import ServiceRuntime
from closedloop.telemetry import instrument_app, setup_tracing, shutdown_tracing

log = logging.getLogger(__name__)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.runtime.sessions() as session:
        yield session


# The dependencies here are `async def` though they never await: FastAPI runs a plain `def` dependency in
# its thread pool, a thread hop per request for reading an attribute (2.6 % of ingest's CPU samples at
# 50 items/s went to that hop for `SettingsDep`).
async def get_runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


def app_state(name: str) -> Any:
    """A dependency on `app.state.<name>`, what `main.py` put there for the routes. Each service names its
    own in `api/deps.py` with their types: `SettingsDep = Annotated[IngestSettings, app_state("settings")]`;
    routes take those as parameters and never read `request.app.state` themselves."""

    async def dependency(request: Request) -> Any:
        return getattr(request.app.state, name)

    dependency.__name__ = f"app_state_{name}"
    return Depends(dependency)


SessionDep = Annotated[AsyncSession, Depends(get_session)]
RuntimeDep = Annotated[ServiceRuntime, Depends(get_runtime)]


Row = TypeVar("Row")


async def get_or_404(session: AsyncSession, model: type[Row], identifier: object, what: str,
                     **options: Any) -> Row:
    """The row with this primary key, or a 404 problem naming `what` ("Ticket", "API key", ...).
    `options` go to `session.get` (e.g. `with_for_update=True`)."""
    row = await session.get(model, identifier, **options)
    if row is None:
        raise NotFound(what, identifier)
    return row


def multi_segment_params(route: object) -> frozenset[str]:
    """The route's parameters declared `{name:path}`: they may hold `/` (a taxonomy path)."""
    convertors = getattr(route, "param_convertors", None) or {}
    return frozenset(name for name, convertor in convertors.items() if isinstance(convertor, PathConvertor))


async def check_path_params(request: Request) -> None:
    """422 naming each path parameter that no id of ours can match (closedloop.limits.PATH_PARAM_PATTERN)."""
    multi_segment = multi_segment_params(request.scope.get("route"))
    bad = bad_path_params(request.path_params, multi_segment)
    if bad:
        def message(name: str) -> str:
            return f"{path_param_rule(name in multi_segment)[1]}, at most {PATH_PARAM_MAX_LENGTH} characters"

        raise ProblemError(422, "Request validation failed",
                           "; ".join(f"path.{name}: {message(name)}" for name in bad), slug="validation-error",
                           errors=[FieldError(field=f"path.{name}", message=message(name)) for name in bad])


def api_router(tag: str, *extra_statuses: int, dependencies: list[Any] | None = None) -> APIRouter:
    """A router for authenticated JSON resources under /v1, with its error responses documented.

    Each route adds the permission it needs (`Depends(require("tickets:read"))`); the router itself
    already refuses a request without valid credentials, so a forgotten declaration never opens a route."""
    return APIRouter(
        prefix="/v1", tags=[tag],
        dependencies=[Depends(authenticated_baseline), Depends(check_path_params), Depends(require_json_body),
                      *(dependencies or [])],
        responses=problem_responses(401, 403, 415, 422, *extra_statuses),
    )


def public_router(tag: str, *extra_statuses: int, prefix: str = "/v1", reason: str,
                  dependencies: list[Any] | None = None) -> APIRouter:
    """A router whose routes are public on purpose (`reason` says why); JSON bodies only."""
    return APIRouter(prefix=prefix, tags=[tag],
                     dependencies=[Depends(public(reason)), Depends(check_path_params), Depends(require_json_body),
                                   *(dependencies or [])],
                     responses=problem_responses(415, 422, *extra_statuses))


def _api_routes(app: FastAPI) -> list[Any]:
    """The routes the OpenAPI document describes."""
    from fastapi import routing

    iterate = getattr(routing, "iter_route_contexts", None)  # FastAPI keeps included routers nested
    routes = list(iterate(app.routes)) if iterate else list(app.routes)
    return [route for route in routes
            if getattr(route, "dependant", None) is not None and getattr(route, "include_in_schema", True)]


def annotate_permissions(app: FastAPI) -> None:
    """Write each route's declared permission into its OpenAPI operation as `x-required-permission`,
    and the pattern check_path_params enforces into each string path parameter."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            for route in _api_routes(app):
                permission = declared_permission(route)
                multi_segment = multi_segment_params(route)
                for method in getattr(route, "methods", None) or ():
                    operation = schema.get("paths", {}).get(getattr(route, "path_format", ""), {}).get(method.lower())
                    if operation is None:
                        continue
                    if permission:
                        operation["x-required-permission"] = permission
                    for parameter in operation.get("parameters", []):
                        declared = parameter.get("schema", {})
                        if parameter.get("in") == "path" and declared.get("type") == "string" and not (
                                {"pattern", "format", "enum"} & set(declared)):
                            pattern, _ = path_param_rule(parameter.get("name") in multi_segment)
                            declared.update(pattern=pattern, maxLength=PATH_PARAM_MAX_LENGTH)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


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

    # FastAPI's own OpenTelemetry bridge is off: closedloop.telemetry.instrument_app already makes the request's
    # server span, and both made two spans (and two sets of metrics) per request, in every service (issue 14).
    app = FastAPI(title=title, description=description, version=version, lifespan=lifespan,
                  telemetry={"tracing": False, "metrics": False, "logs": False})
    app.state.runtime = runtime
    app.state.settings = settings
    app.state.authenticator = Authenticator(settings)
    app.state.rate_limiter = RateLimiter(settings)
    runtime.add_worker(CredentialSync(runtime.broker, app.state.authenticator.store,
                                      settings.identity_refresh_seconds))
    install_problem_handlers(app)

    @app.exception_handler(BrokerUnavailable)
    async def _broker_down(request: Request, exc: BrokerUnavailable) -> JSONResponse:
        return problem_response(request, 503, "Service Unavailable", "The message broker is not reachable.",
                                slug="broker-unavailable", headers={"Retry-After": "5"})

    @app.exception_handler(DBAPIError)
    @app.exception_handler(SQLAlchemyTimeoutError)
    async def _database_busy(request: Request, exc: Exception) -> JSONResponse:
        if not is_contention(exc):  # a real bug: logged and answered 500 like any other
            return await unexpected_error(request, exc)
        log.warning("database busy", extra={"path": request.url.path, "error": str(exc)[:300]})
        return problem_response(request, 503, "Service Unavailable",
                                "The database is busy (a lock or every connection is held); try again shortly.",
                                slug="database-busy", headers={"Retry-After": "1"})

    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(HttpMetrics, service=settings.service_name)
    app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
    app.include_router(health.router)
    for router in routers:
        app.include_router(router)
    app.include_router(_dead_letter_router())
    annotate_permissions(app)
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


class DeadLetterPage(Page[DeadLetterPublic]):
    pass


DeprecatedAfter = Annotated[int, Query(ge=0, le=DB_INT_MAX, deprecated=True,
                                       description="Deprecated: use `cursor`. The last sequence seen.")]


def _dead_letter_router() -> APIRouter:
    router = api_router("dead letters", 404, 503)

    @router.get("/dead-letters", summary="List this service's dead-lettered messages, oldest first",
                response_model=DeadLetterPage, dependencies=[Depends(require("admin"))])
    async def list_dead_letters(runtime: RuntimeDep, limit: Annotated[int, Query(ge=1, le=500)] = 100,
                                cursor: Cursor = None, after: DeprecatedAfter = 0) -> DeadLetterPage:
        """`after` (a stream sequence) is the older way to page, kept for a deprecation period: pass
        `cursor` (the `next_cursor` of the previous page) instead."""
        if cursor:
            (after,) = decode_cursor(cursor, 1)
            if not isinstance(after, int):
                raise invalid_cursor()
        service = runtime.settings.service_name
        letters = await deadletters.list_dead_letters(runtime.broker, service, limit + 1, after)
        next_cursor = encode_cursor([letters[limit - 1].sequence]) if len(letters) > limit else None
        return DeadLetterPage(
            items=[DeadLetterPublic(**{k: getattr(d, k) for k in DeadLetterPublic.model_fields})
                   for d in letters[:limit]],
            total=await deadletters.count_dead_letters(runtime.broker, service), next_cursor=next_cursor)

    @router.post("/dead-letters/{sequence}/replay", status_code=202,
                 summary="Publish a dead letter again on its original subject and remove it",
                 dependencies=[Depends(require("admin"))])
    async def replay(sequence: SequencePath, runtime: RuntimeDep) -> dict[str, str | int]:
        letter = await deadletters.get_dead_letter(runtime.broker, runtime.settings.service_name, sequence)
        if letter is None:
            raise NotFound("Dead letter", sequence)
        await deadletters.replay_dead_letter(runtime.broker, letter)
        return {"status": "replayed", "sequence": sequence, "subject": letter.original_subject}

    return router
