"""API keys for machines: created, listed, rotated and revoked; the key itself is shown only once."""

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, Response
from sqlalchemy import select

from closedloop.api import SessionDep, api_router, get_or_404
from closedloop.auth import Principal, needs, require
from closedloop.errors import conflict, problem_responses
from identity.api.deps import PublisherDep
from identity.keys import create_key, rotate_key
from identity.models import ApiKey
from identity.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic, ApiKeyRotate

router = api_router("api keys", 404)
Admin = Annotated[Principal, Depends(require("admin"))]


async def _key(session: SessionDep, key_id: str) -> ApiKey:
    return await get_or_404(session, ApiKey, key_id, "API key")


@router.post("/api-keys", response_model=ApiKeyCreated, status_code=201, summary="Create an API key")
async def create_api_key(body: ApiKeyCreate, session: SessionDep, publisher: PublisherDep,
                         admin: Admin) -> ApiKeyCreated:
    """The answer holds the key (`clk_<id>_<secret>`) this once; store it, it cannot be shown again."""
    row, key = create_key(body.name, body.scopes, body.channels, admin.actor, datetime.now(UTC))
    session.add(row)
    await session.commit()
    await publisher.changed()
    return ApiKeyCreated(**ApiKeyPublic.model_validate(row).model_dump(), key=key)


@router.get("/api-keys", dependencies=needs("admin"), response_model=list[ApiKeyPublic],
            summary="Every API key (revoked ones too), without the keys themselves")
async def list_api_keys(session: SessionDep) -> list[ApiKeyPublic]:
    return [ApiKeyPublic.model_validate(r) for r in await session.scalars(select(ApiKey).order_by(ApiKey.created_at))]


@router.get("/api-keys/{key_id}", dependencies=needs("admin"), response_model=ApiKeyPublic, summary="One API key")
async def get_api_key(key_id: str, session: SessionDep) -> ApiKeyPublic:
    return ApiKeyPublic.model_validate(await _key(session, key_id))


@router.post("/api-keys/{key_id}/rotate", dependencies=needs("admin"), response_model=ApiKeyCreated,
             responses=problem_responses(409), summary="Replace the key; the old one works for a grace period")
async def rotate_api_key(key_id: str, session: SessionDep, publisher: PublisherDep,
                         body: ApiKeyRotate | None = None) -> ApiKeyCreated:
    row = await _key(session, key_id)
    if row.revoked_at is not None:
        raise conflict("The key is revoked; create a new one.", slug="key-revoked")
    key = rotate_key(row, timedelta(seconds=(body or ApiKeyRotate()).grace_seconds), datetime.now(UTC))
    await session.commit()
    await publisher.changed()
    return ApiKeyCreated(**ApiKeyPublic.model_validate(row).model_dump(), key=key)


@router.delete("/api-keys/{key_id}", dependencies=needs("admin"), status_code=204,
               summary="Revoke a key: refused by every service within about a second")
async def revoke_api_key(key_id: str, session: SessionDep, publisher: PublisherDep) -> Response:
    row = await _key(session, key_id)
    if row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
    # Also when it was revoked before: the transaction must end before the keys are republished, which takes
    # a connection of its own (SQLite's writers share one: waiting for it here held it for 30 s, then 503).
    await session.commit()
    await publisher.changed()
    return Response(status_code=204)
