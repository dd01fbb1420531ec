"""Login (`POST /v1/auth/token`), refresh, who-am-I, the permission model, and the public signing keys."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends

from closedloop.api import SessionDep, api_router, public_router
from closedloop.auth import ROLE_SCOPES, SCOPES, Principal, authenticated
from closedloop.errors import problem_responses
from closedloop.ratelimit import rate_limit
from identity import accounts
from identity.api.deps import SettingsDep
from identity.schemas.auth import PermissionsPublic, TokenIn, TokenResponse, WhoAmI
from identity.signing import jwks_document

# Per client IP (IDENTITY_RATE_LIMIT_IP_*): password guessing stays slow.
login_router = public_router("auth", 400, 401, 429,
                             reason="logging in: the password or one-time code is the credential",
                             dependencies=[Depends(rate_limit("login", per_credential=False))])
jwks_router = public_router("auth", prefix="", reason="public keys, for anyone to verify tokens with")
router = api_router("auth")


@login_router.post("/auth/token", response_model=TokenResponse, responses=problem_responses(401),
                   summary="Log in: a signed token for the services")
async def login(body: TokenIn, session: SessionDep, settings: SettingsDep) -> TokenResponse:
    """With `username` and `password` (a local account), or with the `login_code` the OpenID Connect
    callback gave the console. The token is valid for `expires_in` seconds (15 minutes by default) on
    every service; refresh it with `POST /v1/auth/refresh`."""
    return await accounts.log_in(session, settings, body, datetime.now(UTC))


@router.post("/auth/refresh", response_model=TokenResponse, summary="A fresh token for the same session")
async def refresh(session: SessionDep, settings: SettingsDep,
                  principal: Annotated[Principal, Depends(authenticated())]) -> TokenResponse:
    """For a person's token that is still valid: a new one, while the account is enabled and the login
    is not older than `IDENTITY_SESSION_MAX_SECONDS` (12 hours by default)."""
    return await accounts.refresh_token(session, settings, principal, datetime.now(UTC))


@router.get("/auth/me", response_model=WhoAmI, summary="Who the credentials belong to, and what they may do")
async def who_am_i(principal: Annotated[Principal, Depends(authenticated())]) -> WhoAmI:
    return WhoAmI(kind=principal.kind, id=principal.id, name=principal.name, role=principal.role,
                  scopes=sorted(principal.scopes),
                  allowed_channels=sorted(principal.allowed_channels) if principal.allowed_channels is not None
                  else None)


@router.get("/permissions", response_model=PermissionsPublic, dependencies=[Depends(authenticated())],
            summary="The scopes and what each role of a person grants")
async def permissions() -> PermissionsPublic:
    return PermissionsPublic(scopes=SCOPES, roles={role: sorted(scopes) for role, scopes in ROLE_SCOPES.items()})


@jwks_router.get("/.well-known/jwks.json", summary="Public keys that sign people's tokens (JWKS)")
async def jwks(session: SessionDep) -> dict:
    return await jwks_document(session)
