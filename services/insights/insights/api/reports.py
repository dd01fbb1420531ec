"""The weekly report: who receives it, a preview, and sending it now."""

from datetime import date

from fastapi.responses import HTMLResponse
from pydantic import EmailStr

from closedloop.api import RuntimeDep, SessionDep, api_router
from closedloop.auth import needs
from closedloop.errors import conflict
from insights import report_subscribers
from insights.api.deps import SettingsDep
from insights.reporting import build_report, report_week, send_weekly_report
from insights.schemas.reports import Language, SubscriberIn, SubscriberPublic

router = api_router("weekly report", 404, 409)


@router.get("/report-subscribers", dependencies=needs("config:write"),
            response_model=list[SubscriberPublic], summary="Who receives the weekly report")
async def list_subscribers(session: SessionDep) -> list[SubscriberPublic]:
    return [SubscriberPublic(email=r.email, name=r.name, language=r.language)
            for r in await report_subscribers.all_subscribers(session)]


@router.put("/report-subscribers/{email}", dependencies=needs("config:write"),
            response_model=SubscriberPublic,
            summary="Subscribe a lead to the weekly report (or change their language)")
async def put_subscriber(email: EmailStr, body: SubscriberIn, session: SessionDep) -> SubscriberPublic:
    row = await report_subscribers.subscribe(session, email, body.name, body.language)
    return SubscriberPublic(email=row.email, name=row.name, language=row.language)


@router.delete("/report-subscribers/{email}", dependencies=needs("config:write"),
               status_code=204, summary="Unsubscribe from the weekly report")
async def delete_subscriber(email: str, session: SessionDep) -> None:
    await report_subscribers.unsubscribe(session, email)


@router.get("/reports/weekly", dependencies=needs("reports:read"),
            response_class=HTMLResponse, summary="Preview the weekly report (HTML)",
            responses={200: {"content": {"text/html": {}}}})
async def preview_weekly_report(session: SessionDep, week: date | None = None, language: Language = "en"
                                ) -> HTMLResponse:
    """The report of the week starting on the Monday of `week` (default: the last complete week of data),
    charts embedded as data URIs (in the e-mail they are attached parts)."""
    report = await build_report(session, await report_week(session, week), language, inline=True)
    return HTMLResponse(report.html)


@router.post("/reports/weekly/send", dependencies=needs("config:write"),
             summary="Send the weekly report to the subscribers now")
async def send_report_now(runtime: RuntimeDep, settings: SettingsDep, session: SessionDep,
                          week: date | None = None) -> dict[str, object]:
    """Sends even if the week's report went out before (a deliberate resend)."""
    if not settings.smtp_host:
        raise conflict("E-mail is not configured (INSIGHTS_SMTP_HOST).", slug="smtp-not-configured")
    week_start = await report_week(session, week)
    await session.close()
    sent = await send_weekly_report(runtime.sessions, settings, week_start, force=True)
    return {"week_start": week_start.date().isoformat(), "sent_to": sent}
