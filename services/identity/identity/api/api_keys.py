"""API keys for machines: created, listed, rotated and revoked; the key itself is shown only once.

Every change is committed by the use case before `publisher.changed()` tells the services."""

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, Query, Response

from closedloop.api import SessionDep, api_router, get_or_404
from closedloop.auth import Principal, needs, require
from closedloop.errors import problem_responses
from closedloop.pagination import Cursor
from identity import keys
from identity.api.deps import PublisherDep
from identity.models import ApiKey
from identity.schemas.api_keys import ApiKeyCreated, ApiKeyIn, ApiKeyPage, ApiKeyPublic, ApiKeyRotateIn

router = api_router("api keys", 404)
Admin = Annotated[Principal, Depends(require("admin"))]


@router.post("/api-keys", response_model=ApiKeyCreated, status_code=201, summary="Create an API key")
async def create_api_key(body: ApiKeyIn, session: SessionDep, publisher: PublisherDep,
                         admin: Admin) -> ApiKeyCreated:
    """The answer holds the key (`clk_<id>_<secret>`) this once; store it, it cannot be shown again."""
    row, key = await keys.issue_key(session, body, admin.actor, datetime.now(UTC))
    await publisher.changed()
    return ApiKeyCreated(**ApiKeyPublic.model_validate(row).model_dump(), key=key)


@router.get("/api-keys", dependencies=needs("admin"), response_model=ApiKeyPage,
            summary="Every API key (revoked ones too), oldest first, without the keys themselves")
async def list_api_keys(session: SessionDep, limit: Annotated[int, Query(ge=1, le=500)] = 100,
                        cursor: Cursor = None) -> ApiKeyPage:
    page = await keys.keys_page(session, limit, cursor)
    return ApiKeyPage(items=[ApiKeyPublic.model_validate(r) for r in page.rows], total=page.total,
                      next_cursor=page.next_cursor)


@router.get("/api-keys/{key_id}", dependencies=needs("admin"), response_model=ApiKeyPublic, summary="One API key")
async def get_api_key(key_id: str, session: SessionDep) -> ApiKeyPublic:
    return ApiKeyPublic.model_validate(await get_or_404(session, ApiKey, key_id, "API key"))


@router.post("/api-keys/{key_id}/rotate", dependencies=needs("admin"), response_model=ApiKeyCreated,
             responses=problem_responses(409), summary="Replace the key; the old one works for a grace period")
async def rotate_api_key(key_id: str, session: SessionDep, publisher: PublisherDep,
                         body: ApiKeyRotateIn | None = None) -> ApiKeyCreated:
    grace = timedelta(seconds=(body or ApiKeyRotateIn()).grace_seconds)
    row, key = await keys.rotate(session, key_id, grace, datetime.now(UTC))
    await publisher.changed()
    return ApiKeyCreated(**ApiKeyPublic.model_validate(row).model_dump(), key=key)


@router.delete("/api-keys/{key_id}", dependencies=needs("admin"), status_code=204,
               summary="Revoke a key: refused by every service within about a second")
async def revoke_api_key(key_id: str, session: SessionDep, publisher: PublisherDep) -> Response:
    await keys.revoke(session, key_id, datetime.now(UTC))
    await publisher.changed()
    return Response(status_code=204)
