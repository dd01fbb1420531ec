"""The customer's pages, by the ticket's public token (the token is the credential; no API key):
GET serves the HTML page, the forms post back here (urlencoded) and redirect to the page (POST →
303 → GET), so they work from an e-mail link in any browser, without JavaScript."""

from datetime import datetime
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from closedloop.api import SessionDep
from closedloop.auth import public
from closedloop.ratelimit import rate_limit
from ticketing import links, pages
from ticketing.api.deps import NowDep, OptionsDep, TableDep
from ticketing.conversation import record_csat
from ticketing.models import Agent, Comment, CsatResponse, Ticket
from ticketing.tickets import add_comment, agent_id_of

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
HTML = {200: {"content": {"text/html": {}}, "description": "The page"}}


def _html(content: str, status: int = 200) -> HTMLResponse:
    # The forms post to the public base URL (the same origin behind a proxy that serves it).
    policy = HEADERS["Content-Security-Policy"].replace("form-action 'self'", f"form-action 'self' {links.base_url()}")
    return HTMLResponse(content, status_code=status, headers={**HEADERS, "Content-Security-Policy": policy})


async def _ticket(session: SessionDep, token: str, lock: bool = False) -> Ticket | None:
    query = select(Ticket).where(Ticket.public_token == token)
    if lock and session.bind.dialect.name == "postgresql":
        query = query.with_for_update()
    return await session.scalar(query)


async def _render(session: SessionDep, ticket: Ticket, lang: str, now: datetime, status: int = 200,
                  **options: object) -> HTMLResponse:
    comments = list(await session.scalars(select(Comment).where(Comment.ticket_id == ticket.id,
                                                                Comment.public.is_(True)).order_by(Comment.id)))
    authors = {c.author: agent_id_of(c.author) for c in comments if c.author_type == "agent"}
    found = {a.id: a.name for a in await session.scalars(select(Agent).where(Agent.id.in_(set(authors.values()))))
             } if authors else {}
    names = {author: found[agent] for author, agent in authors.items() if agent in found}
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
    ticket = await _ticket(session, token)
    if ticket is None:
        return _html(pages.not_found_page(pages.page_language(lang)), 404)
    notice = {"reply": pages.Notice("reply_sent"), "csat": pages.Notice("csat_thanks")}.get(sent or "")
    return await _render(session, ticket, pages.page_language(lang, ticket.language), now, notice=notice)


@router.get("/tickets/{token}/csat", response_class=HTMLResponse, responses=HTML,
            summary="The same page opened at its rating form (the link in the resolution e-mail)")
async def csat_page(token: str, session: SessionDep, now: NowDep, lang: LangQuery = None,
                    score: Annotated[int | None, Query(ge=1, le=5)] = None) -> Response:
    ticket = await _ticket(session, token)
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
    ticket = await _ticket(session, token, lock=True)
    form = await _form(request)
    language = pages.page_language(form.get("lang"), ticket.language if ticket else None)
    if ticket is None:
        return _html(pages.not_found_page(language), 404)
    text = form.get("body", "").strip()
    if ticket.status == "closed":
        return await _render(session, ticket, language, now, 409, notice=pages.Notice("closed_note", error=True))
    if not text or len(text) > 20000:
        return await _render(session, ticket, language, now, 422, notice=pages.Notice("error.body", error=True),
                             draft=text[:20000])
    await add_comment(session, ticket, author=ticket.customer_id, author_type="customer", public=True, body=text,
                      now=now, table=table, options=options, channel="web")
    await session.commit()
    return RedirectResponse(f"{links.status_url(token)}?sent=reply&lang={language}#conversation", 303,
                            headers=HEADERS)


@router.post("/tickets/{token}/csat", response_class=HTMLResponse, status_code=303,
             responses={303: {"description": "Recorded; back to the page"}, 422: HTML[200], 409: HTML[200]},
             summary="The page's rating form (urlencoded `score` 1–5 and `comment`)")
async def csat_form(token: str, request: Request, session: SessionDep, table: TableDep, now: NowDep) -> Response:
    ticket = await _ticket(session, token, lock=True)
    form = await _form(request)
    language = pages.page_language(form.get("lang"), ticket.language if ticket else None)
    if ticket is None:
        return _html(pages.not_found_page(language), 404)
    if ticket.status not in ("resolved", "closed"):
        return await _render(session, ticket, language, now, 409,
                             notice=pages.Notice("error.not_resolved", error=True))
    raw = form.get("score", "")
    if raw not in ("1", "2", "3", "4", "5"):
        return await _render(session, ticket, language, now, 422, notice=pages.Notice("error.score", error=True),
                             focus_csat=True)
    comment = form.get("comment", "").strip()[:5000] or None
    await record_csat(session, ticket, int(raw), comment, "page", now, table)
    await session.commit()
    return RedirectResponse(f"{links.status_url(token)}?sent=csat&lang={language}#csat", 303, headers=HEADERS)
