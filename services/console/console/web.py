"""Rendering pages and knowing who is asking: sessions from the cookie, roles checked on the server,
the user's language and time zone set for the request, errors turned into pages."""

import hashlib
import json
import secrets
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, unquote

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.api import app_state
from console import i18n
from console.identity import Identity, IdentityUnavailable, refresh
from console.live import LiveHub
from console.models import LoginSession, Preference
from console.roles import INSIGHTS_ROLES, allows
from console.settings import ConsoleSettings
from console.upstream import Upstream, UpstreamError, UserApi

SESSION_COOKIE = "console_session"
FLASH_COOKIE = "console_flash"
TEMPLATES = Path(__file__).resolve().parent / "templates"

templates = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                        extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True)
templates.install_gettext_callables(  # type: ignore[attr-defined]
    lambda message: i18n.catalogue(i18n.current_locale()).gettext(message),
    lambda singular, plural, n: i18n.catalogue(i18n.current_locale()).ngettext(singular, plural, n),
    newstyle=True)
templates.globals.update(
    dt=i18n.datetime_format, duration=i18n.duration_format, relative=i18n.relative_format,
    number=i18n.number_format, percent=i18n.percent_format, html_lang=i18n.html_lang, LOCALES=i18n.LOCALES,
    tojson=lambda value: json.dumps(value, default=str),
)
templates.filters["urlquote"] = lambda value: quote(str(value), safe="")


def _plain(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_plain(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_plain(v)}" for k, v in value.items())
    return "—" if value is None else str(value)


# Audit details as words ("status: open, pending"), not JSON.
templates.filters["plain"] = _plain


@dataclass
class User:
    user_id: str
    display_name: str
    role: str
    scopes: frozenset[str]
    locale: str
    timezone: str
    api: UserApi

    def can(self, scope: str) -> bool:
        return allows(self.scopes, scope)

    @property
    def sees_insights(self) -> bool:
        return self.role in INSIGHTS_ROLES and self.can("reports:read")


class LoginRequired(Exception):
    pass


class Forbidden(Exception):
    def __init__(self, scope: str) -> None:
        super().__init__(scope)
        self.scope = scope


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def open_session(session: AsyncSession, identity: Identity) -> str:
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    async with session.begin():
        # Expired sessions of anyone are removed at each login: the table stays as small as the live sessions.
        await session.execute(delete(LoginSession).where(LoginSession.expires_at < now))
        session.add(LoginSession(token_hash=token_hash(token), user_id=identity.user_id,
                                 display_name=identity.display_name, role=identity.role,
                                 scopes=sorted(identity.scopes), access_token=identity.access_token,
                                 token_expires_at=identity.token_expires_at, created_at=now,
                                 expires_at=identity.expires_at))
    return token


async def close_session(session: AsyncSession, token: str | None) -> None:
    if token:
        async with session.begin():
            await session.execute(delete(LoginSession).where(LoginSession.token_hash == token_hash(token)))


async def current_user(request: Request) -> User:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise LoginRequired()
    runtime = request.app.state.runtime
    async with runtime.read_sessions() as session:
        row = await session.get(LoginSession, token_hash(token))
        if row is None or row.expires_at <= datetime.now(UTC):
            raise LoginRequired()
        preference = await session.get(Preference, row.user_id)
    settings = request.app.state.settings
    if row.access_token and row.token_expires_at and \
            (row.token_expires_at - datetime.now(UTC)).total_seconds() < settings.token_refresh_margin_seconds:
        row = await _refreshed(request, token)
    locale = preference.locale if preference else settings.default_locale
    zone = preference.timezone if preference else settings.default_timezone
    i18n.use(locale, zone)
    return User(user_id=row.user_id, display_name=row.display_name, role=row.role, scopes=frozenset(row.scopes),
                locale=locale, timezone=zone, api=request.app.state.upstream.as_user(row.access_token))


async def _refreshed(request: Request, token: str) -> LoginSession:
    """Trade a person's token that is about to expire for a fresh one; the login ends when identity refuses."""
    async with request.app.state.runtime.sessions() as session, session.begin():
        row = await session.get(LoginSession, token_hash(token))
        if row is None or row.access_token is None:
            raise LoginRequired()
        try:
            fresh = await refresh(request.app.state.settings, request.app.state.upstream.plain, row.access_token)
        except IdentityUnavailable:
            fresh = None
            if row.token_expires_at and row.token_expires_at > datetime.now(UTC):
                return row  # still valid for a while: try again on the next request
        if fresh is None:
            await session.delete(row)  # committed on the way out; the login ends below
        else:
            row.access_token, row.token_expires_at = fresh.access_token, fresh.token_expires_at
            row.role, row.scopes = fresh.role, sorted(fresh.scopes)  # a changed role applies from here on
    if fresh is None:
        raise LoginRequired()
    return row


UserDep = Annotated[User, Depends(current_user)]
# What main.py built, for the pages (the providers above read app.state; pages take these instead).
SettingsDep = Annotated[ConsoleSettings, app_state("settings")]
UpstreamDep = Annotated[Upstream, app_state("upstream")]
LiveDep = Annotated[LiveHub, app_state("live")]


def needs(scope: str) -> Any:
    """A page or action that only users with `scope` may use; checked here, on the server."""

    async def check(user: UserDep) -> User:
        if not user.can(scope):
            raise Forbidden(scope)
        return user

    return Depends(check)


def needs_insights() -> Any:
    """The insights section: analysts, leads and admins (see `roles.INSIGHTS_ROLES`); checked on the server."""

    async def check(user: UserDep) -> User:
        if not user.sees_insights:
            raise Forbidden("role analyst, lead or admin")
        return user

    return Depends(check)


def render(request: Request, name: str, user: User | None, status_code: int = 200,
           **context: Any) -> HTMLResponse:
    flash = unquote(request.cookies.get(FLASH_COOKIE) or "") or None
    page = templates.get_template(name).render(request=request, user=user, flash=flash, path=request.url.path,
                                               **context)
    response = HTMLResponse(page, status_code=status_code)
    if request.cookies.get(FLASH_COOKIE):
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def redirect(url: str, message: str | None = None) -> RedirectResponse:
    """After a form: back to a page (303, so a reload does not repeat the action), with a notice on it."""
    response = RedirectResponse(url, status_code=303)
    if message:
        response.set_cookie(FLASH_COOKIE, quote(message), path="/", httponly=True, samesite="strict")
    return response


async def act(call: Awaitable[object], back_to: str, done: str) -> RedirectResponse:
    """Run an action against a service, then back to the page with what happened, or why it did not
    (the service's problem detail, naming the wrong field). No credentials or no permission: the error page."""
    try:
        await call
    except UpstreamError as exc:
        if exc.status in (401, 403):
            raise
        return redirect(back_to, i18n.gettext("Not done: %(reason)s", reason=exc.detail))
    return redirect(back_to, done)


def back(request: Request, fallback: str = "/") -> str:
    referer = request.headers.get("referer", "")
    host = f"{request.url.scheme}://{request.url.netloc}"
    return referer[len(host):] if referer.startswith(host + "/") else fallback


def install_page_errors(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.headers.get("hx-request") or request.url.path == "/events":
            return Response(status_code=401, headers={"HX-Redirect": "/login"})
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        user = await _user_or_none(request)
        return render(request, "error.html", user, status_code=403, status=403,
                      title=i18n.gettext("Not allowed"),
                      detail=i18n.gettext("Your role does not allow this page or action (it needs %(scope)s).",
                                          scope=exc.scope))

    @app.exception_handler(UpstreamError)
    async def _upstream(request: Request, exc: UpstreamError) -> Response:
        if exc.status == 401:
            return RedirectResponse("/login", status_code=303)
        user = await _user_or_none(request)
        status = exc.status if exc.status in (403, 404, 409, 422) else 502
        return render(request, "error.html", user, status_code=status, status=status,
                      title=i18n.gettext("The %(service)s service refused this", service=exc.service),
                      detail=exc.detail)


async def _user_or_none(request: Request) -> User | None:
    try:
        return await current_user(request)
    except LoginRequired:
        return None
