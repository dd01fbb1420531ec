"""API keys: created with scopes (and optionally channels), shown once, stored as a SHA-256 hash.

Each use case called from a route opens its own transaction (ADR 0014) and ends it before the route
republishes the keys: republishing reads them on a connection of its own, and SQLite's writers share one."""

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.api import get_or_404
from closedloop.credentials import hash_api_key
from closedloop.errors import conflict
from closedloop.pagination import KeysetPage, keyset_page
from identity.models import ApiKey
from identity.schemas.api_keys import ApiKeyIn


def new_secret(key_id: str) -> str:
    return f"clk_{key_id}_{secrets.token_urlsafe(32)}"


def create_key(name: str, scopes: list[str], channels: list[str] | None, created_by: str,
               now: datetime) -> tuple[ApiKey, str]:
    key_id = secrets.token_hex(6)
    key = new_secret(key_id)
    row = ApiKey(id=key_id, name=name, scopes=sorted(set(scopes)),
                 channels=sorted(set(channels)) if channels is not None else None,
                 secret_hash=hash_api_key(key), created_by=created_by, created_at=now, last_four=key[-4:])
    return row, key


def rotate_key(row: ApiKey, grace: timedelta, now: datetime) -> str:
    """A new key for the same record; the old one keeps working for `grace` so clients can switch."""
    key = new_secret(row.id)
    row.previous_hash = row.secret_hash if grace.total_seconds() > 0 else None
    row.previous_expires_at = now + grace if grace.total_seconds() > 0 else None
    row.secret_hash = hash_api_key(key)
    row.rotated_at = now
    row.last_four = key[-4:]
    return key


async def issue_key(session: AsyncSession, body: ApiKeyIn, created_by: str, now: datetime) -> tuple[ApiKey, str]:
    async with session.begin():
        row, key = create_key(body.name, body.scopes, body.channels, created_by, now)
        session.add(row)
    return row, key


async def keys_page(session: AsyncSession, limit: int, cursor: str | None) -> KeysetPage[ApiKey]:
    return await keyset_page(session, select(ApiKey), order=(ApiKey.created_at, ApiKey.id), limit=limit,
                             cursor=cursor, descending=False)


async def rotate(session: AsyncSession, key_id: str, grace: timedelta, now: datetime) -> tuple[ApiKey, str]:
    async with session.begin():
        row = await get_or_404(session, ApiKey, key_id, "API key")
        if row.revoked_at is not None:
            raise conflict("The key is revoked; create a new one.", slug="key-revoked")
        return row, rotate_key(row, grace, now)


async def revoke(session: AsyncSession, key_id: str, now: datetime) -> None:
    """Revoking a revoked key is a no-op that still succeeds (DELETE is idempotent)."""
    async with session.begin():
        row = await get_or_404(session, ApiKey, key_id, "API key")
        if row.revoked_at is None:
            row.revoked_at = now


async def api_keys_document(session: AsyncSession, now: datetime) -> dict[str, Any]:
    """What every service needs to verify keys offline: scopes, channels and valid hashes (see credentials)."""
    rows = await session.scalars(select(ApiKey).where(ApiKey.revoked_at.is_(None)).order_by(ApiKey.id))
    keys = {}
    for row in rows:
        hashes: list[dict[str, Any]] = [{"sha256": row.secret_hash, "expires_at": None}]
        if row.previous_hash and row.previous_expires_at and row.previous_expires_at > now:
            hashes.append({"sha256": row.previous_hash, "expires_at": row.previous_expires_at.isoformat()})
        keys[row.id] = {"name": row.name, "scopes": row.scopes, "channels": row.channels, "hashes": hashes}
    return {"keys": keys}
