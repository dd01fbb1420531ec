"""The agent workspace: queues sorted by SLA due time, the ticket view (what the customer said, what the
machine decided and why, the SLA clocks, the whole timeline) and the actions on a ticket."""

import asyncio
import time
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response, StreamingResponse

from console.i18n import _, parse_time
from console.settings import ConsoleSettings
from console.upstream import UpstreamError, UserApi
from console.web import LiveDep, SettingsDep, User, act, needs, redirect, render

router = APIRouter(tags=["console: workspace"], include_in_schema=False)

ReadUser = Annotated[User, needs("tickets:read")]
WriteUser = Annotated[User, needs("tickets:write")]

QUEUES = ("mine", "team", "triage", "breaching", "unassigned")
QUEUE_LIMIT = 50


def queue_title(queue: str) -> str:
    return {"mine": _("Mine"), "team": _("My team's"), "triage": _("Triage"), "breaching": _("Breaching soon"),
            "unassigned": _("Unassigned")}[queue]


async def _agent(api: UserApi, user_id: str) -> dict[str, Any] | None:
    try:
        return await api.get_or_none("ticketing", f"/v1/agents/{user_id}")
    except UpstreamError:
        return None


def _queue_filters(queue: str, user: User, teams: list[str], breaching_minutes: int) -> dict[str, Any] | None:
    """The ticket list filters of a queue; None when it cannot apply (no team for "my team's")."""
    base: dict[str, Any] = {"active": "true", "sort": "due", "limit": QUEUE_LIMIT}
    if queue == "mine":
        return {**base, "assignee": user.user_id}
    if queue == "team":
        return {**base, "team": teams[0]} if teams else None
    if queue == "triage":
        return {**base, "category": "needs_triage"}
    if queue == "breaching":
        due = datetime.now(UTC) + timedelta(minutes=breaching_minutes)
        return {**base, "due_before": due.isoformat()}
    if queue == "unassigned":
        return {**base, "assignee": "none"}
    return None


def next_due(ticket: dict[str, Any]) -> str | None:
    if not ticket.get("first_responded_at") and ticket.get("first_response_due_at"):
        return ticket["first_response_due_at"]
    return ticket.get("resolution_due_at")


async def _queues(settings: ConsoleSettings, user: User, queue: str, team: str | None) -> dict[str, Any]:
    agent = await _agent(user.api, user.user_id)
    teams = [team] if team else list((agent or {}).get("teams") or [])
    minutes = settings.breaching_soon_minutes
    filters = {name: _queue_filters(name, user, teams, minutes) for name in QUEUES}

    async def page(name: str) -> dict[str, Any] | None:
        wanted = filters[name]
        if wanted is None:
            return None
        if name != queue:
            # Only the count for the other queues: newest first is ticketing's indexed order, no sort by due.
            wanted = {**wanted, "limit": 1, "sort": "created"}
        return await user.api.get("ticketing", "/v1/tickets", **wanted)

    pages = dict(zip(QUEUES, await asyncio.gather(*(page(name) for name in QUEUES)), strict=True))
    current = pages.get(queue) or {"items": [], "total": 0}
    for ticket in current["items"]:
        ticket["next_due_at"] = next_due(ticket)
    return {"queue": queue, "queues": QUEUES, "counts": {k: (v or {}).get("total") for k, v in pages.items()},
            "tickets": current["items"], "total": current["total"], "team": teams[0] if teams else None,
            "agent": agent}


@router.get("/")
async def home(user: ReadUser) -> Response:
    return redirect("/queues/mine" if user.can("tickets:write") else "/dashboards")


@router.get("/queues/{queue}")
async def queue_page(request: Request, queue: str, user: ReadUser, settings: SettingsDep,
                     team: str | None = None) -> Response:
    if queue not in QUEUES:
        return render(request, "error.html", user, status_code=404, status=404, title=_("No such queue"),
                      detail=queue)
    context = await _queues(settings, user, queue, team)
    teams = await user.api.get("ticketing", "/v1/teams") if queue == "team" else []  # only its picker needs them
    # The live script asks for the list alone when an event arrives (no full page reload).
    fragment = bool(request.headers.get("hx-request"))
    return render(request, "_queue_list.html" if fragment else "queue.html", user, teams=teams,
                  queue_title=queue_title, oob=fragment, **context)


@router.get("/events")
async def events(user: ReadUser, live: LiveDep) -> StreamingResponse:
    return StreamingResponse(live.stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


# --- the ticket view ----------------------------------------------------------------------------

_taxonomy_cache: dict[str, tuple[float, Any]] = {}
TAXONOMY_TTL_SECONDS = 30.0


async def taxonomy(api: UserApi) -> dict[str, Any]:
    """The active taxonomy, kept 30 s per process: every ticket view shows the picker."""
    cached = _taxonomy_cache.get("active")
    if cached and time.monotonic() - cached[0] < TAXONOMY_TTL_SECONDS:
        return cached[1]
    value = await api.get("classify", "/v1/taxonomy")
    _taxonomy_cache["active"] = (time.monotonic(), value)
    return value


def forget_taxonomy() -> None:
    _taxonomy_cache.clear()


async def _optional(call: Awaitable[Any]) -> Any:
    """A part of the page that may be missing (a service down, a role without the scope): None, not an error."""
    try:
        return await call
    except UpstreamError:
        return None


async def _score_breakdown(api: UserApi, ticket: dict[str, Any], text: str) -> dict[str, Any] | None:
    """How the priority came about, recomputed by ticketing's dry run from the ticket's own inputs."""
    body = {"category": ticket["category"], "sentiment": ticket["sentiment"],
            "sentiment_score": ticket["sentiment_score"], "customer_tier": ticket["customer"]["tier"],
            "channel": ticket["channel"], "language": ticket.get("language"), "severity": ticket.get("severity"),
            "text": text[:5000], "needs_triage": ticket["category"] == "needs_triage"}
    return await _optional(api.post("ticketing", "/v1/routing-rules/dry-run", body))


def timeline(audit: list[dict], comments: list[dict], deliveries: list[dict]) -> list[dict[str, Any]]:
    """Every change, reply, note and notification of the ticket in one list, oldest first."""
    items = [{"kind": "audit", "at": a["created_at"], "entry": a} for a in audit]
    items += [{"kind": "reply" if c["public"] else "note", "at": c["created_at"], "entry": c} for c in comments]
    items += [{"kind": "delivery", "at": d["created_at"], "entry": d} for d in deliveries]
    return sorted(items, key=lambda item: parse_time(item["at"]) or datetime.min.replace(tzinfo=UTC))


async def suggested_replies(api: UserApi, ticket_id: str) -> list[dict[str, Any]]:
    """Macros ranked for this ticket (ticketing's suggested replies), or none where that API is missing."""
    found = await _optional(api.get_or_none("ticketing", f"/v1/tickets/{ticket_id}/suggested-replies"))
    if isinstance(found, dict):
        found = found.get("items") or found.get("suggestions") or []
    return list(found or [])


@router.get("/tickets/{ticket_id}")
async def ticket_page(request: Request, ticket_id: str, user: ReadUser) -> Response:
    api = user.api
    ticket = await api.get("ticketing", f"/v1/tickets/{ticket_id}")
    feedback_id = ticket.get("feedback_id")
    classification, comments, audit, sla, deliveries, agents, tax, macros, feedback = await asyncio.gather(
        _optional(api.get_or_none("classify", f"/v1/classifications/{feedback_id}")) if feedback_id
        else asyncio.sleep(0, None),
        api.get("ticketing", f"/v1/tickets/{ticket_id}/comments"),
        api.get("ticketing", f"/v1/tickets/{ticket_id}/audit"),
        api.get("ticketing", f"/v1/tickets/{ticket_id}/sla"),
        _optional(api.get("notify", "/v1/deliveries", ticket_id=ticket_id, limit=100)),
        _optional(api.get("ticketing", "/v1/agents")),
        _optional(taxonomy(api)),
        suggested_replies(api, ticket_id) if user.can("tickets:write") else asyncio.sleep(0, []),
        _optional(api.get_or_none("ingest", f"/v1/feedback/{feedback_id}")) if feedback_id
        else asyncio.sleep(0, None),
    )
    score = await _score_breakdown(api, ticket, ticket["description"])
    delivery_items = (deliveries or {}).get("items", []) if isinstance(deliveries, dict) else (deliveries or [])
    labels = {n["key"]: n["name"] for n in (tax or {}).get("nodes", [])}
    return render(request, "ticket.html", user, ticket=ticket, classification=classification, feedback=feedback,
                  sla=sla, timeline=timeline(audit, comments, delivery_items), agents=agents or [],
                  taxonomy=(tax or {}).get("nodes", []), labels=labels, macros=macros, score=score,
                  next_due_at=next_due(ticket),
                  statuses=_next_statuses(ticket["status"]))


TRANSITIONS = {"new": ["open", "pending", "resolved"], "open": ["pending", "resolved"],
               "pending": ["open", "resolved"], "resolved": ["closed", "open"], "closed": ["open"]}


def _next_statuses(status: str) -> list[str]:
    return TRANSITIONS.get(status, [])


def status_label(status: str) -> str:
    return {"new": _("New"), "open": _("Open"), "pending": _("Pending"), "resolved": _("Resolved"),
            "closed": _("Closed")}.get(status, status)


@router.post("/tickets/{ticket_id}/reply")
async def reply(request: Request, ticket_id: str, user: WriteUser, body: Annotated[str, Form()],
                macro_id: Annotated[str, Form()] = "") -> Response:
    payload: dict[str, Any] = {"author": user.user_id, "author_type": "agent", "public": True, "body": body}
    if macro_id:  # the macro the text started from: ticketing's suggestions learn from it
        payload["macro_id"] = macro_id
    return await act(user.api.post("ticketing", f"/v1/tickets/{ticket_id}/comments", payload),
                     f"/tickets/{ticket_id}", _("Reply sent."))


@router.post("/tickets/{ticket_id}/note")
async def note(request: Request, ticket_id: str, user: WriteUser, body: Annotated[str, Form()]) -> Response:
    payload = {"author": user.user_id, "author_type": "agent", "public": False, "body": body}
    return await act(user.api.post("ticketing", f"/v1/tickets/{ticket_id}/comments", payload),
                     f"/tickets/{ticket_id}", _("Note added."))


@router.post("/tickets/{ticket_id}/assign")
async def assign(request: Request, ticket_id: str, user: WriteUser, assignee: Annotated[str, Form()]) -> Response:
    target = user.user_id if assignee == "me" else assignee
    payload = {"actor": user.user_id, "assignee": target or None, "reason": "assigned in the console"}
    return await act(user.api.patch("ticketing", f"/v1/tickets/{ticket_id}", payload), f"/tickets/{ticket_id}",
                     _("Assigned to %(agent)s.", agent=target) if target else _("Unassigned."))


@router.post("/tickets/{ticket_id}/status")
async def change_status(request: Request, ticket_id: str, user: WriteUser,
                        status: Annotated[str, Form()], message: Annotated[str, Form()] = "") -> Response:
    payload = {"actor": user.user_id, "status": status}
    if message.strip() and status == "resolved":  # sent to the customer with the resolution
        payload["message"] = message.strip()
    return await act(user.api.post("ticketing", f"/v1/tickets/{ticket_id}/status", payload),
                     f"/tickets/{ticket_id}", _("Status changed to %(status)s.", status=status_label(status)))


@router.post("/tickets/{ticket_id}/recategorize")
async def recategorize(request: Request, ticket_id: str, user: WriteUser,
                       category: Annotated[str, Form()]) -> Response:
    tax = await _optional(taxonomy(user.api))
    label = next((n["name"] for n in (tax or {}).get("nodes", []) if n["key"] == category), None)
    payload = {"actor": user.user_id, "category": category, "category_label": label,
               "reason": "recategorized in the console"}
    return await act(user.api.patch("ticketing", f"/v1/tickets/{ticket_id}", payload), f"/tickets/{ticket_id}",
                     _("Category changed to %(category)s; classify learns from it.", category=label or category))


@router.post("/tickets/{ticket_id}/merge")
async def merge(request: Request, ticket_id: str, user: WriteUser,
                into_ticket_id: Annotated[str, Form()]) -> Response:
    payload = {"actor": user.user_id, "into_ticket_id": into_ticket_id.strip()}
    try:
        await user.api.post("ticketing", f"/v1/tickets/{ticket_id}/merge", payload)
    except UpstreamError as exc:
        if exc.status in (401, 403):
            raise
        return redirect(f"/tickets/{ticket_id}", _("Not done: %(reason)s", reason=exc.detail))
    return redirect(f"/tickets/{into_ticket_id.strip()}", _("Merged."))  # the ticket that lives on


@router.post("/tickets/{ticket_id}/link")
async def link(request: Request, ticket_id: str, user: WriteUser, other_id: Annotated[str, Form()]) -> Response:
    payload = {"actor": user.user_id, "ticket_id": other_id.strip()}
    return await act(user.api.post("ticketing", f"/v1/tickets/{ticket_id}/links", payload),
                     f"/tickets/{ticket_id}", _("Linked."))
