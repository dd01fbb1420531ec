"""API-key authentication: `X-API-Key: <key>` (or `Authorization: Bearer <key>`).

Several keys may be valid at once so a key can be rotated without downtime.
"""

import secrets
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from closedloop.errors import ProblemError

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="Service API key.")
_bearer = HTTPBearer(auto_error=False, description="The API key as a bearer token.")


def _valid(candidate: str, keys: list[str]) -> bool:
    # Compare against every key so the time taken does not reveal which one nearly matched.
    matched = False
    for key in keys:
        matched |= secrets.compare_digest(candidate.encode(), key.encode())
    return matched


async def require_api_key(
    request: Request,
    api_key: Annotated[str | None, Depends(_api_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    candidate = api_key or (bearer.credentials if bearer else None)
    if not candidate:
        raise ProblemError(401, "Unauthorized", "Send your API key in the X-API-Key header.",
                           slug="missing-api-key", headers={"WWW-Authenticate": "ApiKey"})
    if not _valid(candidate, request.app.state.settings.api_keys):
        raise ProblemError(401, "Unauthorized", "The API key is not valid.",
                           slug="invalid-api-key", headers={"WWW-Authenticate": "ApiKey"})
    return candidate


ApiKeyDep = Annotated[str, Depends(require_api_key)]
