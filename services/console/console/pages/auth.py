"""Log in and out, and the user's own preferences (language, time zone)."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.api import SessionDep
from console import i18n
from console.i18n import _
from console.identity import IdentityUnavailable, login
from console.models import Preference
from console.settings import ConsoleSettings
from console.web import SESSION_COOKIE, SettingsDep, UpstreamDep, UserDep, close_session, open_session, redirect, render

router = APIRouter(tags=["console: sign-in"], include_in_schema=False)


def _hint(settings: ConsoleSettings) -> str | None:
    if settings.login_hint:
        return settings.login_hint
    if settings.identity_url or not settings.demo_users:
        return None
    users = ", ".join(" / ".join(entry.split(":")[:2]) for entry in settings.demo_users)
    return _("Demo sign-ins: %(users)s", users=users)


def _safe_next(target: str | None) -> str:
    # Only paths of this site: an open redirect would let a link send people elsewhere after login.
    return target if target and target.startswith("/") and not target.startswith("//") else "/"


@router.get("/login")
async def login_page(request: Request, settings: SettingsDep, next: str | None = None) -> Response:
    i18n.use(settings.default_locale, settings.default_timezone)
    return render(request, "login.html", None, next=_safe_next(next), error=None, hint=_hint(settings))


@router.post("/login")
async def login_submit(request: Request, session: SessionDep, settings: SettingsDep, upstream: UpstreamDep,
                       username: Annotated[str, Form()], password: Annotated[str, Form()],
                       next: Annotated[str, Form()] = "/") -> Response:
    i18n.use(settings.default_locale, settings.default_timezone)
    try:
        identity = await login(settings, upstream.plain, username.strip(), password)
    except IdentityUnavailable:
        return render(request, "login.html", None, status_code=503, next=_safe_next(next),
                      error=_("The sign-in service is not reachable; try again in a moment."), hint=_hint(settings))
    if identity is None:
        return render(request, "login.html", None, status_code=401, next=_safe_next(next),
                      error=_("Wrong user name or password."), hint=_hint(settings))
    token = await open_session(session, identity)
    response = redirect(_safe_next(next))
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", secure=settings.cookie_secure,
                        max_age=int((identity.expires_at - datetime.now(UTC)).total_seconds()), path="/")
    return response


@router.post("/logout")
async def logout(request: Request, session: SessionDep) -> Response:
    await close_session(session, request.cookies.get(SESSION_COOKIE))
    response = redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/preferences")
async def preferences_page(request: Request, user: UserDep) -> Response:
    return render(request, "preferences.html", user, zones=i18n.zone_names(), now=datetime.now(UTC))


async def _save_preference(session: AsyncSession, user_id: str, locale: str, zone: str) -> None:
    now = datetime.now(UTC)
    async with session.begin():
        row = await session.get(Preference, user_id)
        if row is None:
            session.add(Preference(user_id=user_id, locale=locale, timezone=zone, updated_at=now))
        else:
            row.locale, row.timezone, row.updated_at = locale, zone, now


@router.post("/preferences")
async def preferences_submit(request: Request, user: UserDep, session: SessionDep,
                             locale: Annotated[str, Form()], timezone: Annotated[str, Form()]) -> Response:
    if locale not in i18n.LOCALES or not i18n.valid_zone(timezone):
        return render(request, "preferences.html", user, status_code=422, zones=i18n.zone_names(),
                      now=datetime.now(UTC), error=_("Choose a language and a time zone from the lists."))
    await _save_preference(session, user.user_id, locale, timezone)
    i18n.use(locale, timezone)
    return redirect("/preferences", _("Preferences saved."))
