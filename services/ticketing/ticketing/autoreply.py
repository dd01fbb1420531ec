"""Answers that need no agent, decided when the ticket is opened and audited like any change:

- feedback that matches an open, declared incident (by category or keyword) gets the incident's public
  message and is linked to it (the ticket stays open until the incident is dealt with);
- praise and thanks get a thank-you (the "Thanks for the kind words" macro in the customer's language),
  and the ticket closes itself — or, with mode "no_ticket", no ticket is kept at all (the thank-you
  still goes out and the audit log keeps the decision under the id the ticket would have had).

Each rule can be switched off, and both can be switched off per category (`disabled_categories`).
The rules are a settings document edited over the API (`/v1/auto-reply`)."""

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ticketing import macros
from ticketing.audit import audit
from ticketing.config_cache import cached, detached_copies
from ticketing.models import Incident, Macro, Setting, Ticket
from ticketing.sla import stop_clock

SETTING_KEY = "auto_reply"
THANKS_MACRO = "Thanks for the kind words"


class PraiseRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    categories: list[str] = Field(default_factory=lambda: ["general/praise"],
                                  description="Taxonomy keys (any level) that count as praise or thanks.")
    mode: Literal["close", "no_ticket"] = Field(
        default="close", description="close: the ticket is answered and closes itself; no_ticket: no ticket is kept.")


class IncidentRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True


class AutoReplyRules(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "praise": {"enabled": True, "categories": ["general/praise"], "mode": "close"},
        "incidents": {"enabled": True}, "disabled_categories": ["billing"]}]})

    praise: PraiseRule = Field(default_factory=PraiseRule)
    incidents: IncidentRule = Field(default_factory=IncidentRule)
    disabled_categories: list[str] = Field(default_factory=list,
                                           description="No auto-reply for these taxonomy keys (any level).")


def covers(keys: list[str], category: str) -> bool:
    return any(category == key or category.startswith(key + "/") for key in keys)


async def load_rules(session: AsyncSession) -> AutoReplyRules:
    stored = await session.get(Setting, SETTING_KEY)
    return AutoReplyRules.model_validate(stored.document) if stored else AutoReplyRules()


async def save_rules(session: AsyncSession, rules: AutoReplyRules, now: datetime) -> None:
    """Replace the rules (`PUT /v1/auto-reply`), in a transaction of its own."""
    async with session.begin():
        stored = await session.get(Setting, SETTING_KEY)
        if stored is None:
            session.add(Setting(key=SETTING_KEY, document=rules.model_dump(mode="json"), updated_at=now,
                                updated_by="api"))
        else:
            stored.document, stored.updated_at, stored.updated_by = rules.model_dump(mode="json"), now, "api"


async def open_incidents(session: AsyncSession) -> list[Incident]:
    return detached_copies(await session.scalars(select(Incident).where(Incident.status == "open")
                                                 .order_by(Incident.created_at)))


async def matching_incident(session: AsyncSession, category: str, text: str) -> Incident | None:
    lowered = text.casefold()
    for incident in await cached(session, "open_incidents", lambda: open_incidents(session)):
        if covers(incident.categories or [], category) or any(
                keyword.casefold() in lowered for keyword in incident.keywords or [] if keyword.strip()):
            return incident
    return None


def incident_message(incident: Incident, language: str | None) -> str | None:
    messages = incident.public_message or {}
    lang = macros.base_language(language)
    return messages.get(language or "") or messages.get(lang) or messages.get("en") or next(iter(messages.values()),
                                                                                            None)


async def thank_you(session: AsyncSession, ticket: Ticket, now: datetime) -> tuple[str, str | None]:
    rows = {m.language: m for m in await session.scalars(select(Macro).where(Macro.name == THANKS_MACRO,
                                                                             Macro.active.is_(True)))}
    macro = rows.get(macros.base_language(ticket.language)) or rows.get("en")
    if macro is None:
        return "Thank you for taking the time to tell us!", None
    return macros.render(macro.body, macros.placeholder_values(ticket, macro.language, now)), macro.id


async def decide(session: AsyncSession, ticket: Ticket, sentiment: str, now: datetime) -> str | None:
    """Which rule answers this new ticket: "incident", "praise", "praise_no_ticket" or None."""
    rules = await cached(session, "auto_reply_rules", lambda: load_rules(session))
    if covers(rules.disabled_categories, ticket.category):
        return None
    if rules.incidents.enabled and await matching_incident(session, ticket.category, ticket.description):
        return "incident"
    if rules.praise.enabled and sentiment != "negative" and covers(rules.praise.categories, ticket.category):
        return "praise" if rules.praise.mode == "close" else "praise_no_ticket"
    return None


async def apply(session: AsyncSession, ticket: Ticket, rule: str, now: datetime,
                reply: Callable[..., Awaitable[None]]) -> None:
    """Send the auto-reply (`reply` is tickets.add_comment, bound to this ticket's context)."""
    if rule == "incident":
        incident = await matching_incident(session, ticket.category, ticket.description)
        assert incident is not None
        ticket.incident_id = incident.id
        text = incident_message(incident, ticket.language)
        audit(session, ticket.id, "auto-reply", "incident_linked", now, incident=incident.id)
        if text:
            await reply(body=text, rule="incident")
        return
    text, macro_id = await thank_you(session, ticket, now)
    await reply(body=text, rule="praise", macro_id=macro_id)
    if rule == "praise":
        # Closed, not resolved: nobody worked on it, so it counts in no resolution time and asks for no CSAT.
        ticket.status, ticket.closed_at, ticket.updated_at = "closed", now, now
        await stop_clock(session, ticket, "first_response", now)
        await stop_clock(session, ticket, "resolution", now)
        audit(session, ticket.id, "auto-reply", "auto_closed", now, rule="praise")
