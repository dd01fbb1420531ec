"""The customer's pages, by the ticket's public token (the token is the credential; no API key):
GET serves the HTML page, the forms post back here (urlencoded) and redirect to the page (POST →
303 → GET), so they work from an e-mail link in any browser, without JavaScript."""

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from closedloop.api import SessionDep
from closedloop.auth import public
from closedloop.errors import ProblemError
from closedloop.ratelimit import rate_limit
from ticketing import customer_tickets, links, pages
from ticketing.api.deps import NowDep, OptionsDep, TableDep
from ticketing.customer_tickets import TicketNotFound
from ticketing.models import CsatResponse, Ticket

# The customer's pages (HTML): public on purpose, the unguessable token is the secret; limited per client IP.
router = APIRouter(tags=["customer pages"], dependencies=[
    Depends(public("the customer's token pages: the unguessable token is the secret")),
    Depends(rate_limit("public", per_credential=False))])
FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FORM_BYTES = 64_000
# The token is in the URL: never send it on as a referrer, never cache or index the page.
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex",
           "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
           "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                                      "base-uri 'none'; frame-ancestors 'none'"}
LangQuery = Annotated[str | None, Query(max_length=20, description="Page language (en, zh); default: the ticket's.")]
HTML: dict[int | str, dict[str, Any]] = {200: {"content": {"text/html": {}}, "description": "The page"}}


def _html(content: str, status: int = 200) -> HTMLResponse:
    # The forms post to the public base URL (the same origin behind a proxy that serves it).
    policy = HEADERS["Content-Security-Policy"].replace("form-action 'self'", f"form-action 'self' {links.base_url()}")
    return HTMLResponse(content, status_code=status, headers={**HEADERS, "Content-Security-Policy": policy})


async def _render(session: SessionDep, ticket: Ticket, lang: str, now: datetime, status: int = 200,
                  **options: object) -> HTMLResponse:
    comments = await customer_tickets.public_comments(session, ticket)
    names = await customer_tickets.agent_names(session, comments)
    csat = await session.get(CsatResponse, ticket.id)
    return _html(pages.ticket_page(ticket, comments, names, csat, lang, now, **options), status)  # type: ignore[arg-type]


async def _form(request: Request) -> dict[str, str]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if content_type != FORM_TYPE or len(body) > MAX_FORM_BYTES:
        return {}
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


@router.get("/tickets/{token}", response_class=HTMLResponse, responses=HTML,
            summary="The customer's page: conversation, status, expected response time, reply and CSAT forms")
async def ticket_page(token: str, session: SessionDep, now: NowDep, lang: LangQuery = None,
                      sent: Annotated[str | None, Query(pattern="^(reply|csat)$")] = None) -> Response:
    ticket = await customer_tickets.ticket_by_token(session, token)
    if ticket is None:
        return _html(pages.not_found_page(pages.page_language(lang)), 404)
    notice = {"reply": pages.Notice("reply_sent"), "csat": pages.Notice("csat_thanks")}.get(sent or "")
    return await _render(session, ticket, pages.page_language(lang, ticket.language), now, notice=notice)


@router.get("/tickets/{token}/csat", response_class=HTMLResponse, responses=HTML,
            summary="The same page opened at its rating form (the link in the resolution e-mail)")
async def csat_page(token: str, session: SessionDep, now: NowDep, lang: LangQuery = None,
                    score: Annotated[int | None, Query(ge=1, le=5)] = None) -> Response:
    ticket = await customer_tickets.ticket_by_token(session, token)
    language = pages.page_language(lang, ticket.language if ticket else None)
    if ticket is None:
        return _html(pages.not_found_page(language), 404)
    notice = None if ticket.status in ("resolved", "closed") else pages.Notice("error.not_resolved", error=True)
    return await _render(session, ticket, language, now, notice=notice, focus_csat=True, chosen_score=score)


@router.post("/tickets/{token}/replies", response_class=HTMLResponse, status_code=303,
             responses={303: {"description": "Added; back to the page"}, 422: HTML[200], 409: HTML[200]},
             summary="The page's reply form (urlencoded `body`)")
async def reply_form(token: str, request: Request, session: SessionDep, table: TableDep, now: NowDep,
                     options: OptionsDep) -> Response:
    form = await _form(request)
    text = form.get("body", "").strip()
    try:
        ticket = await customer_tickets.reply(session, token, text, table, now, options)
    except TicketNotFound:
        return _html(pages.not_found_page(pages.page_language(form.get("lang"))), 404)
    except ProblemError as refused:
        return await _refused(session, token, form, now, refused, draft=text[:customer_tickets.REPLY_MAX_CHARS])
    language = pages.page_language(form.get("lang"), ticket.language)
    return RedirectResponse(f"{links.status_url(token)}?sent=reply&lang={language}#conversation", 303,
                            headers=HEADERS)


@router.post("/tickets/{token}/csat", response_class=HTMLResponse, status_code=303,
             responses={303: {"description": "Recorded; back to the page"}, 422: HTML[200], 409: HTML[200]},
             summary="The page's rating form (urlencoded `score` 1–5 and `comment`)")
async def csat_form(token: str, request: Request, session: SessionDep, table: TableDep, now: NowDep) -> Response:
    form = await _form(request)
    raw = form.get("score", "")
    score = int(raw) if raw in ("1", "2", "3", "4", "5") else None
    comment = form.get("comment", "").strip()[:5000] or None
    try:
        row = await customer_tickets.rate(session, token, score, comment, table, now)
    except TicketNotFound:
        return _html(pages.not_found_page(pages.page_language(form.get("lang"))), 404)
    except ProblemError as refused:
        return await _refused(session, token, form, now, refused, focus_csat=refused.status == 422)
    ticket = await session.get(Ticket, row.ticket_id)
    language = pages.page_language(form.get("lang"), ticket.language if ticket else None)
    return RedirectResponse(f"{links.status_url(token)}?sent=csat&lang={language}#csat", 303, headers=HEADERS)


# What each refusal of a form shows on the page it re-renders.
_NOTICES = {"ticket-closed": pages.Notice("closed_note", error=True),
            "not-resolved": pages.Notice("error.not_resolved", error=True)}
_FIELD_NOTICES = {"body.body": pages.Notice("error.body", error=True),
                  "body.score": pages.Notice("error.score", error=True)}


async def _refused(session: SessionDep, token: str, form: dict[str, str], now: datetime, refused: ProblemError,
                   **options: object) -> Response:
    """The page again, with the refusal's notice and its status (409, 422), the form as the customer sent it."""
    ticket = await customer_tickets.ticket_by_token(session, token)
    if ticket is None:  # deleted (erased) since
        return _html(pages.not_found_page(pages.page_language(form.get("lang"))), 404)
    field = refused.errors[0].field if refused.errors else ""
    notice = _NOTICES.get(refused.slug or "") or _FIELD_NOTICES.get(field)
    if notice is None:
        raise refused
    language = pages.page_language(form.get("lang"), ticket.language)
    return await _render(session, ticket, language, now, refused.status, notice=notice, **options)
