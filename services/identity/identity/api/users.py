"""People: local accounts with a role (OIDC users appear here after their first login)."""

from datetime import UTC, datetime

from fastapi import Response
from sqlalchemy import select

from closedloop.api import SessionDep, api_router, get_or_404
from closedloop.auth import needs
from closedloop.errors import conflict, problem_responses
from identity.accounts import new_user
from identity.models import User
from identity.passwords import hash_password
from identity.schemas import UserCreate, UserPublic, UserUpdate

router = api_router("users", 404)
ADMIN = needs("admin")


@router.post("/users", dependencies=ADMIN, response_model=UserPublic, status_code=201,
             responses=problem_responses(409), summary="Create a local account")
async def create_user(body: UserCreate, session: SessionDep) -> UserPublic:
    if await session.get(User, body.id) is not None:
        raise conflict(f"A user {body.id!r} exists already.", slug="user-exists")
    user = new_user(body.id, body.display_name, body.role, datetime.now(UTC), password=body.password,
                    email=body.email)
    session.add(user)
    await session.commit()
    return UserPublic.model_validate(user)


@router.get("/users", dependencies=ADMIN, response_model=list[UserPublic], summary="Every user")
async def list_users(session: SessionDep) -> list[UserPublic]:
    return [UserPublic.model_validate(u) for u in await session.scalars(select(User).order_by(User.id))]


@router.get("/users/{user_id}", dependencies=ADMIN, response_model=UserPublic, summary="One user")
async def get_user(user_id: str, session: SessionDep) -> UserPublic:
    user = await get_or_404(session, User, user_id, "User")
    return UserPublic.model_validate(user)


@router.patch("/users/{user_id}", dependencies=ADMIN, response_model=UserPublic,
              summary="Change a user's name, role or password, or disable the account")
async def update_user(user_id: str, body: UserUpdate, session: SessionDep) -> UserPublic:
    """A role change or a disabled account applies to new tokens at once and to tokens already
    handed out when they expire (at most `IDENTITY_TOKEN_TTL_SECONDS`); refresh is refused at once."""
    user = await get_or_404(session, User, user_id, "User")
    for name in ("display_name", "email", "role", "disabled"):
        if name in body.model_fields_set and getattr(body, name) is not None:
            setattr(user, name, getattr(body, name))
    if body.password:
        user.password_hash = hash_password(body.password)
    user.updated_at = datetime.now(UTC)
    await session.commit()
    return UserPublic.model_validate(user)


@router.delete("/users/{user_id}", dependencies=ADMIN, status_code=204, summary="Delete a user")
async def delete_user(user_id: str, session: SessionDep) -> Response:
    user = await get_or_404(session, User, user_id, "User")
    await session.delete(user)
    await session.commit()
    return Response(status_code=204)
