"""`GET /v1/auth/oidc/login` sends the browser to the identity provider; the provider sends it back to
`GET /v1/auth/oidc/callback`, which logs the person in (identity.oidc_logins, identity.oidc)."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Query
from fastapi.responses import RedirectResponse

from closedloop.api import SessionDep, public_router
from closedloop.errors import ProblemError
from identity import oidc, oidc_logins
from identity.api.deps import SettingsDep
from identity.schemas.auth import TokenResponse
from identity.settings import IdentitySettings

public = public_router("auth", 400, 401, 403, 404, 502,
                       reason="the OpenID Connect redirects: the provider's signed id_token is the credential")


def _enabled(settings: IdentitySettings) -> IdentitySettings:
    if not oidc.enabled(settings):
        raise ProblemError(404, "Not Found", "OpenID Connect login is not configured (IDENTITY_OIDC_ISSUER).",
                           slug="oidc-not-configured")
    return settings


@public.get("/auth/oidc/login", status_code=302, response_class=RedirectResponse,
            summary="Start a login at the identity provider")
async def oidc_login(session: SessionDep, settings: SettingsDep,
                     return_to: Annotated[str | None, Query(max_length=2000)] = None) -> RedirectResponse:
    """`return_to` (one of `IDENTITY_OIDC_ALLOWED_RETURN_URLS`, e.g. the console's page) gets the browser
    back with `?login_code=…`, which the console trades for a token at `POST /v1/auth/token`. Without
    it, the callback answers the token as JSON."""
    _enabled(settings)
    url = await oidc_logins.start_login(session, settings, return_to, datetime.now(UTC))
    return RedirectResponse(url, status_code=302)


@public.get("/auth/oidc/callback", response_model=TokenResponse, responses={303: {"description": "To return_to"}},
            summary="Where the identity provider sends the browser back")
async def oidc_callback(session: SessionDep, settings: SettingsDep,
                        state: Annotated[str, Query(min_length=1, max_length=200)],
                        code: Annotated[str | None, Query(min_length=1, max_length=4000)] = None,
                        error: Annotated[str | None, Query(max_length=200)] = None) -> TokenResponse | RedirectResponse:
    _enabled(settings)
    finished = await oidc_logins.finish_login(session, settings, state, code, error, datetime.now(UTC))
    if finished.redirect_to is not None:
        return RedirectResponse(finished.redirect_to, status_code=303)
    assert finished.token is not None
    return finished.token
