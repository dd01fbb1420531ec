"""RFC 9457 problem details: every error any service returns has this shape.

    {"type": "...", "title": "...", "status": 422, "detail": "...", "instance": "/v1/...",
     "errors": [{"field": "body.text", "message": "..."}]}
"""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://closedloop.dev/problems/"


class FieldError(BaseModel):
    field: str = Field(description="Where the problem is, e.g. `body.customer.id` or `header.Idempotency-Key`.")
    message: str


class Problem(BaseModel):
    type: str = Field(default="about:blank", examples=[TYPE_BASE + "validation-error"])
    title: str = Field(examples=["Request validation failed"])
    status: int = Field(examples=[422])
    detail: str | None = Field(default=None, examples=["body.text: text must not be empty"])
    instance: str | None = Field(default=None, examples=["/v1/feedback"])
    errors: list[FieldError] | None = None


class ProblemError(Exception):
    """Raise from domain code or routes for a problem+json answer."""

    def __init__(self, status: int, title: str, detail: str | None = None, *, slug: str | None = None,
                 errors: list[FieldError] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail or title)
        self.status, self.title, self.detail = status, title, detail
        self.slug, self.errors, self.headers = slug, errors, headers


class NotFound(ProblemError):
    def __init__(self, what: str, identifier: object) -> None:
        super().__init__(404, f"{what} not found", f"No {what.lower()} with id {identifier}.", slug="not-found")


def field_problem(field: str, message: str, *, detail: str | None = None, title: str = "Request validation failed",
                  slug: str = "validation-error") -> ProblemError:
    """A 422 naming the one field that is wrong (`body.teams`, `query.since`, ...), in the shape FastAPI's own
    validation errors have: `detail` is "field: message" unless given."""
    return ProblemError(422, title, f"{field}: {message}" if detail is None else detail, slug=slug,
                        errors=[FieldError(field=field, message=message)])


def conflict(detail: str, *, slug: str, title: str = "Conflict", field: str | None = None,
             message: str | None = None) -> ProblemError:
    """A 409: the request is well-formed but the resource's current state refuses it (`slug` names which
    state); `field` and `message`, when given, name the part of the request that collides."""
    errors = [FieldError(field=field, message=message or detail)] if field is not None else None
    return ProblemError(409, title, detail, slug=slug, errors=errors)


def problem_response(request: Request, status: int, title: str, detail: str | None = None,
                     slug: str | None = None, errors: list[FieldError] | None = None,
                     headers: dict[str, str] | None = None) -> JSONResponse:
    body = Problem(type=TYPE_BASE + slug if slug else "about:blank", title=title, status=status,
                   detail=detail, instance=request.url.path, errors=errors)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status,
                        media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _validation_problem(request: Request, exc: RequestValidationError) -> JSONResponse:
    raw = exc.errors()
    if any(error.get("type") == "json_invalid" for error in raw):
        return problem_response(request, 400, "Malformed JSON",
                                "The request body is not valid JSON.", slug="malformed-json",
                                errors=[FieldError(field="body", message=str(raw[0].get("msg")))])
    errors = [FieldError(field=_field_path(tuple(e.get("loc", ()))), message=str(e.get("msg"))) for e in raw]
    detail = "; ".join(f"{e.field}: {e.message}" for e in errors[:5])
    return problem_response(request, 422, "Request validation failed", detail,
                            slug="validation-error", errors=errors)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(request, exc.status, exc.title, exc.detail, exc.slug, exc.errors, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_problem(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        from http import HTTPStatus

        title = HTTPStatus(exc.status_code).phrase if exc.status_code in HTTPStatus._value2member_map_ else "Error"
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else None
        return problem_response(request, exc.status_code, title, detail, headers=getattr(exc, "headers", None))

    app.add_exception_handler(Exception, unexpected_error)


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", extra={"path": request.url.path}, exc_info=exc)
    return problem_response(request, 500, "Internal Server Error", "An unexpected error occurred; it has been logged.")


_DESCRIPTIONS = {
    400: "Malformed request (e.g. invalid JSON).",
    401: "Missing or invalid credentials (API key or token).",
    403: "The credentials lack the permission this route needs; `detail` names it.",
    404: "No such resource.",
    409: "Conflict with the current state (e.g. an Idempotency-Key reused with another body).",
    413: "Request body too large.",
    415: "Unsupported content type: send `application/json`.",
    422: "Validation failed; `errors` names each field that is wrong.",
    429: "Too many requests; retry after the `Retry-After` header's seconds.",
    503: "A dependency (database or broker) is unavailable.",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the problem statuses a route can answer."""
    return {
        status: {"model": Problem, "description": _DESCRIPTIONS.get(status, "Error."),
                 "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
        for status in statuses
    }
