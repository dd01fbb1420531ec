"""Request guards shared by every JSON API."""

import json
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError

from closedloop.errors import ProblemError
from closedloop.limits import UNSTORABLE_MESSAGE, find_unstorable

JSON_TYPES = ("application/json", "application/merge-patch+json")
# openapi_extra marker of a route that validates each item of its body itself (a batch), so one bad
# string rejects that item, not the whole request.
PER_ITEM_VALIDATION = "x-closedloop-validates-each-item"


async def require_json_body(request: Request) -> None:
    """415 for a body sent as anything but JSON (FastAPI would otherwise report a confusing 422)."""
    if request.method not in ("POST", "PUT", "PATCH"):
        return
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    has_body = request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers
    if not has_body and not content_type:
        return
    if content_type not in JSON_TYPES and not content_type.endswith("+json"):
        raise ProblemError(415, "Unsupported Media Type",
                           f"Send the body as application/json (got {content_type or 'no content type'}).",
                           slug="unsupported-media-type")
    await _reject_unstorable_strings(request)


async def _reject_unstorable_strings(request: Request) -> None:
    """422 for a JSON string that cannot be stored or sent back: an unpaired surrogate (`"\\ud800"`) or NUL.
    Both can only arrive as a `\\u` escape, so a body without one is not parsed a second time. Checked here,
    once for every route, rather than on each string field of each schema."""
    body = await request.body()
    if b"\\u" not in body:
        return
    route = request.scope.get("route")
    if PER_ITEM_VALIDATION in (getattr(route, "openapi_extra", None) or {}):
        return
    try:
        parsed = json.loads(body)
    except ValueError:
        return  # FastAPI answers malformed JSON itself
    path = find_unstorable(parsed)
    if path is not None:
        raise RequestValidationError([{"type": "string_unstorable", "loc": ("body", *path),
                                       "msg": UNSTORABLE_MESSAGE, "input": None}])


class BodySizeLimit:
    """Reject bodies over `max_bytes` with 413 before reading them into memory. A body sent without
    Content-Length (chunked) is read up to `max_bytes` here, then handed on to the app."""

    def __init__(self, app, max_bytes: int) -> None:  # type: ignore[no-untyped-def]
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "http":
            length = dict(scope["headers"]).get(b"content-length")
            if length is not None and length.isdigit() and int(length) > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            if length is None:
                messages, size = [], 0
                while True:
                    message = await receive()
                    messages.append(message)
                    if message["type"] != "http.request":
                        break
                    size += len(message.get("body", b""))
                    if size > self.max_bytes:
                        await self._too_large(scope, receive, send)
                        return
                    if not message.get("more_body", False):
                        break
                receive = _replay(messages, receive)
        await self.app(scope, receive, send)

    async def _too_large(self, scope: Any, receive: Any, send: Any) -> None:
        from starlette.requests import Request as StarletteRequest

        from closedloop.errors import problem_response

        response = problem_response(StarletteRequest(scope), 413, "Content Too Large",
                                    f"The body is over {self.max_bytes} bytes.", slug="body-too-large")
        await response(scope, receive, send)


def _replay(messages: list[Any], receive: Any) -> Any:
    """A `receive` that hands out the already-read messages first, then asks the server again."""
    pending = list(messages)

    async def replayed() -> Any:
        return pending.pop(0) if pending else await receive()

    return replayed
