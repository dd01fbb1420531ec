"""People: local accounts with a role (OIDC users appear here after their first login)."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Query, Response

from closedloop.api import SessionDep, api_router, get_or_404
from closedloop.auth import needs
from closedloop.errors import problem_responses
from closedloop.pagination import Cursor
from identity import accounts
from identity.models import User
from identity.schemas.users import UserIn, UserPage, UserPatchIn, UserPublic

router = api_router("users", 404)
ADMIN = needs("admin")


@router.post("/users", dependencies=ADMIN, response_model=UserPublic, status_code=201,
             responses=problem_responses(409), summary="Create a local account")
async def create_user(body: UserIn, session: SessionDep) -> UserPublic:
    return UserPublic.model_validate(await accounts.create_user(session, body, datetime.now(UTC)))


@router.get("/users", dependencies=ADMIN, response_model=UserPage, summary="Every user, by id")
async def list_users(session: SessionDep, limit: Annotated[int, Query(ge=1, le=500)] = 100,
                     cursor: Cursor = None) -> UserPage:
    page = await accounts.users_page(session, limit, cursor)
    return UserPage(items=[UserPublic.model_validate(u) for u in page.rows], total=page.total,
                    next_cursor=page.next_cursor)


@router.get("/users/{user_id}", dependencies=ADMIN, response_model=UserPublic, summary="One user")
async def get_user(user_id: str, session: SessionDep) -> UserPublic:
    return UserPublic.model_validate(await get_or_404(session, User, user_id, "User"))


@router.patch("/users/{user_id}", dependencies=ADMIN, response_model=UserPublic,
              summary="Change a user's name, role or password, or disable the account")
async def update_user(user_id: str, body: UserPatchIn, session: SessionDep) -> UserPublic:
    """A role change or a disabled account applies to new tokens at once and to tokens already
    handed out when they expire (at most `IDENTITY_TOKEN_TTL_SECONDS`); refresh is refused at once."""
    return UserPublic.model_validate(await accounts.update_user(session, user_id, body, datetime.now(UTC)))


@router.delete("/users/{user_id}", dependencies=ADMIN, status_code=204, summary="Delete a user")
async def delete_user(user_id: str, session: SessionDep) -> Response:
    await accounts.delete_user(session, user_id)
    return Response(status_code=204)
