from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from closedloop.events import Severity
from closedloop.limits import SafeId
from ticketing.calendar import BusinessHours
from ticketing.rules import RuleActions, RuleConditions

Priority = Literal["P0", "P1", "P2", "P3"]
Status = Literal["new", "open", "pending", "resolved", "closed"]
# Kept so older clients' bodies stay valid, and ignored: the audit log records the authenticated
# principal (`user:<id>` or `api_key:<id>`), never a name the caller typed.
Actor = Field(default=None, max_length=200, deprecated=True,
              description="Ignored: the audit log records the authenticated caller.")

_TICKET_EXAMPLE = {
    "id": "6f1c3c1e-2b1f-4c4e-9a51-0c7f0d3b2a10", "feedback_id": "0b8e5d8a-8f7e-4c1e-b1a4-2d9f6b1c3e55",
    "title": "My card was charged twice", "description": "My card was charged twice and support does not answer",
    "channel": "app", "customer": {"id": "cust-1", "tier": "vip", "email": "ana@example.com", "name": "Ana"},
    "category": "billing/unexpected_charge", "category_label": "Unexpected or duplicate charge",
    "category_confidence": 0.82, "sentiment": "negative", "sentiment_score": 0.91, "priority": "P1",
    "team": "payments", "routing_reason": "rule 'billing -> payments' (position 130) fired; score 75 …",
    "status": "open", "assignee": "bob@example.com", "public_token": "q5Jb0m3cJ2xk7Qe1xw0d3n5oYy1sTz2R",
    "created_at": "2026-11-24T09:00:00Z", "updated_at": "2026-11-24T09:00:00Z", "language": "en",
    "severity": "high", "tags": ["billing"], "priority_score": 75, "sla_policy": "P1 VIP",
    "first_response_due_at": "2026-11-24T09:30:00Z", "resolution_due_at": "2026-11-24T17:00:00Z",
    "sla_breached": False, "first_responded_at": None, "resolved_at": None, "closed_at": None,
    "merged_into": None, "related_ticket_ids": [], "attached_feedback_ids": [],
}


class CustomerPublic(BaseModel):
    id: str
    tier: str
    email: str | None
    name: str | None


class TicketPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_TICKET_EXAMPLE]})

    id: str
    feedback_id: str | None
    title: str
    description: str
    channel: str
    customer: CustomerPublic
    category: str
    category_label: str
    category_confidence: float
    sentiment: str
    sentiment_score: float
    priority: str = Field(description="P0 (outage, data loss, security) .. P3")
    team: str
    routing_reason: str
    status: str
    assignee: str | None
    public_token: str
    created_at: datetime
    updated_at: datetime
    language: str | None = None
    severity: str | None = None
    tags: list[str] = Field(default_factory=list)
    priority_score: int | None = Field(default=None, description="100 × impact × severity × customer value.")
    sla_policy: str | None = None
    first_response_due_at: datetime | None = None
    resolution_due_at: datetime | None = None
    sla_breached: bool = False
    first_responded_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    merged_into: str | None = None
    related_ticket_ids: list[str] = Field(default_factory=list)
    attached_feedback_ids: list[str] = Field(default_factory=list,
                                             description="Feedback that joined this ticket as a duplicate.")


class TicketPage(BaseModel):
    items: list[TicketPublic]
    total: int = Field(description="How many tickets match the filters, over all pages.")
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next page; null on the last page.")


class TeamPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"key": "payments", "name": "Payments", "lead": "lead.payments@example.com"}]})

    key: str
    name: str
    lead: str | None


# --- routing rules and scoring --------------------------------------------------------------


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "name": "VIP fraud to trust & safety", "position": 5, "enabled": True,
        "conditions": {"categories": ["security"], "customer_tiers": ["vip"], "keywords": ["fraud"]},
        "actions": {"team": "trust-and-safety", "priority": "P0", "tags": ["fraud"]}}]})

    name: str = Field(min_length=1, max_length=200)
    position: int | None = Field(default=None, ge=0, description="Evaluation order (ascending); default: last.")
    enabled: bool = True
    conditions: RuleConditions = Field(default_factory=RuleConditions)
    actions: RuleActions


class RulePublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "2c5e…", "name": "VIP fraud to trust & safety", "position": 5, "enabled": True,
        "conditions": {"categories": ["security"], "customer_tiers": ["vip"], "keywords": ["fraud"]},
        "actions": {"team": "trust-and-safety", "priority": "P0", "tags": ["fraud"], "assignee": None},
        "created_at": "2026-11-24T09:00:00Z", "updated_at": "2026-11-24T09:00:00Z"}]})

    id: str
    name: str
    position: int
    enabled: bool
    conditions: RuleConditions
    actions: RuleActions
    created_at: datetime
    updated_at: datetime


class DryRunIn(BaseModel):
    """A classified message, as ticketing would receive it."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "category": "security/fraud_phishing", "sentiment": "negative", "sentiment_score": 0.9,
        "customer_tier": "vip", "channel": "email", "language": "en", "severity": "critical",
        "text": "Someone used my card for a payment I never made"}]})

    category: str = Field(min_length=1)
    sentiment: Literal["negative", "neutral", "positive"] = "neutral"
    sentiment_score: float = Field(0.5, ge=0, le=1)
    customer_tier: str = "standard"
    channel: str = "api"
    language: str | None = None
    severity: Severity | None = None
    text: str = ""
    subject: str | None = None
    needs_triage: bool = False


class ScorePublic(BaseModel):
    score: int
    priority: Priority
    impact: float
    severity: str
    severity_weight: float
    customer_value: float


class RuleEvaluationPublic(BaseModel):
    rule_id: str
    name: str
    position: int
    matched: bool
    reasons: list[str]


class FiredRule(BaseModel):
    id: str
    name: str
    position: int


class DryRunOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "team": "trust-and-safety", "priority": "P0", "tags": [], "assignee": None, "triage": False,
        "fired_rule": {"id": "2c5e…", "name": "security -> trust-and-safety", "position": 120},
        "score": {"score": 100, "priority": "P0", "impact": 1.0, "severity": "critical", "severity_weight": 1.0,
                  "customer_value": 1.0},
        "evaluations": [{"rule_id": "2c5e…", "name": "security -> trust-and-safety", "position": 120,
                         "matched": True, "reasons": ["category 'security/fraud_phishing' is within 'security'"]}],
        "reasons": ["rule 'security -> trust-and-safety' (position 120) fired: …"]}]})

    team: str
    priority: Priority
    tags: list[str]
    assignee: str | None
    triage: bool
    fired_rule: FiredRule | None
    score: ScorePublic
    evaluations: list[RuleEvaluationPublic] = Field(description="Rules looked at, in order, until one fired.")
    reasons: list[str]


# --- SLA policies ----------------------------------------------------------------------------


class SlaPolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "name": "P1 enterprise", "priority": "P1", "customer_tier": "enterprise", "first_response_minutes": 60,
        "resolution_minutes": 480, "warn_at_share": 0.8, "escalate_on_breach": True,
        "business_hours": {"timezone": "Europe/Berlin",
                           "weekly": {d: ["09:00", "17:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
                           "holidays": ["2026-12-25"]}}]})

    name: str = Field(min_length=1, max_length=100)
    priority: Priority
    customer_tier: str | None = Field(default=None, description="Null: every tier without a policy of its own.")
    first_response_minutes: int | None = Field(default=None, gt=0, description="Null: no first-response target.")
    resolution_minutes: int | None = Field(default=None, gt=0, description="Null: no resolution target.")
    warn_at_share: float = Field(0.8, gt=0, lt=1, description="Warn when this share of the target has passed.")
    business_hours: BusinessHours | None = Field(default=None, description="Null: 24/7 (calendar time).")
    escalate_on_breach: bool = Field(True, description="At breach raise the priority and notify the team lead.")


class SlaPolicyPublic(SlaPolicyIn):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "7d1a…", "name": "P1", "priority": "P1", "customer_tier": None, "first_response_minutes": 120,
        "resolution_minutes": 960, "warn_at_share": 0.8, "escalate_on_breach": True,
        "business_hours": {"timezone": "UTC", "weekly": {"mon": ["09:00", "17:00"]}, "holidays": []},
        "created_at": "2026-11-24T09:00:00Z", "updated_at": "2026-11-24T09:00:00Z"}]})

    id: str
    created_at: datetime
    updated_at: datetime


class SlaClockPublic(BaseModel):
    target: Literal["first_response", "resolution"]
    policy: str
    target_minutes: int
    started_at: datetime
    warn_at: datetime
    due_at: datetime
    paused_at: datetime | None
    stopped_at: datetime | None
    warned_at: datetime | None
    breached_at: datetime | None


# --- agents ----------------------------------------------------------------------------------

AgentStatus = Literal["online", "away", "offline"]


class AgentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "id": "bob@example.com", "name": "Bob", "teams": ["payments"], "skills": ["billing", "security/fraud_phishing"],
        "languages": ["en", "de"], "capacity": 8, "status": "online"}]})

    id: SafeId = Field(examples=["bob@example.com"])
    name: str = Field(min_length=1, max_length=200)
    teams: list[str] = Field(min_length=1)
    skills: list[str] = Field(default_factory=list, description="Taxonomy keys (any level) or tags.")
    languages: list[str] = Field(default_factory=list)
    capacity: int = Field(5, ge=0, le=1000, description="Most active tickets at once.")
    status: AgentStatus = "online"


class AgentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"status": "offline"}]})

    name: str | None = Field(default=None, min_length=1, max_length=200)
    teams: list[str] | None = Field(default=None, min_length=1)
    skills: list[str] | None = None
    languages: list[str] | None = None
    capacity: int | None = Field(default=None, ge=0, le=1000)
    status: AgentStatus | None = None


class AgentPublic(AgentIn):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "bob@example.com", "name": "Bob", "teams": ["payments"], "skills": ["billing"], "languages": ["en"],
        "capacity": 8, "status": "online", "load": 3, "last_assigned_at": "2026-11-24T09:00:00Z",
        "reassigned": 0}]})

    load: int = Field(description="Active tickets assigned now.")
    last_assigned_at: datetime | None
    reassigned: int = Field(0, description="Tickets (re)assigned by this change.")


# --- lifecycle ---------------------------------------------------------------------------------


class TicketUpdate(BaseModel):
    """Only the fields sent are changed. `assignee: null` unassigns."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"priority": "P0", "reason": "customer is losing money every minute"}]})

    actor: str | None = Actor
    reason: str | None = Field(default=None, max_length=2000)
    priority: Priority | None = None
    team: str | None = None
    category: str | None = Field(default=None, min_length=1, max_length=200)
    category_label: str | None = None
    assignee: SafeId | None = None
    tags: list[str] | None = None


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"status": "pending"}]})

    status: Status
    actor: str | None = Actor
    message: str | None = Field(default=None, min_length=1, max_length=20000,
                                description="With `resolved`: a public resolution message sent to the customer "
                                            "(announced as ticket.replied.v1, kind `resolution`).")


class CommentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"author_type": "agent", "public": True,
         "body": "We refunded the duplicate charge; it shows within 3 days."}]})

    author: str | None = Field(default=None, max_length=200, deprecated=True,
                               description="Ignored: the comment's author is the authenticated caller.")
    author_type: Literal["agent", "customer"] = "agent"
    public: bool = Field(True, description="Public reply (the customer sees it) or internal note.")
    body: str = Field(min_length=1, max_length=20000,
                      description="What is sent: the agent's final text (a macro's text as edited).")
    macro_id: SafeId | None = Field(default=None, max_length=36,
                                    description="The macro the text started from; suggestions learn from it.")


class CommentPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"id": 1, "author": "user:ana", "author_type": "agent", "public": False,
         "body": "Checked the ledger: duplicate capture.", "created_at": "2026-11-24T09:10:00Z"}]})

    id: int
    author: str
    author_type: str
    public: bool
    body: str
    created_at: datetime
    kind: str | None = Field(default=None, description="Public messages to the customer: reply, resolution or "
                                                        "auto_reply.")
    channel: str | None = Field(default=None, description="Where it was delivered or came from (email, chat, web…).")
    delivery_status: Literal["pending", "delivered", "undelivered"] | None = Field(
        default=None, description="Messages to the customer: pending until notify reports; undelivered when the "
                                  "delivery was dead-lettered or could not be sent (see delivery_error).")
    delivery_error: str | None = None
    macro_id: str | None = None
    feedback_id: str | None = Field(default=None, description="A customer's reply by e-mail or chat: its feedback.")


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"into_ticket_id": "6f1c3c1e-2b1f-4c4e-9a51-0c7f0d3b2a10"}]})

    into_ticket_id: SafeId
    actor: str | None = Actor


class LinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"ticket_id": "6f1c3c1e-2b1f-4c4e-9a51-0c7f0d3b2a10"}]})

    ticket_id: SafeId
    actor: str | None = Actor


class AuditPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"id": 7, "actor": "user:ana", "action": "priority_overridden",
         "details": {"priority": ["P2", "P0"], "reason": "losing money"}, "created_at": "2026-11-24T09:12:00Z"}]})

    id: int
    actor: str
    action: str
    details: dict[str, object]
    created_at: datetime


# --- public status page and CSAT ------------------------------------------------------------------


class PublicReply(BaseModel):
    author_type: str
    body: str
    created_at: datetime


class CsatIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"score": 5, "comment": "Fast and friendly, thank you!"}]})

    score: int = Field(ge=1, le=5)
    comment: str | None = Field(default=None, max_length=5000)


class CsatPublic(CsatIn):
    created_at: datetime


class CustomerReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"body": "Here is the screenshot you asked for."}]})

    body: str = Field(min_length=1, max_length=20000)


class PublicTicket(BaseModel):
    """What the customer sees: no internal notes, no agent or routing details."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "title": "My card was charged twice", "status": "open", "created_at": "2026-11-24T09:00:00Z",
        "expected_first_response_by": "2026-11-24T09:30:00Z", "first_responded_at": None,
        "expected_resolution_by": "2026-11-24T17:00:00Z", "resolved_at": None,
        "replies": [{"author_type": "agent", "body": "We are on it.", "created_at": "2026-11-24T09:05:00Z"}],
        "csat": None}]})

    title: str
    status: Status
    created_at: datetime
    expected_first_response_by: datetime | None
    first_responded_at: datetime | None
    expected_resolution_by: datetime | None
    resolved_at: datetime | None
    replies: list[PublicReply]
    csat: CsatPublic | None


# --- macros and suggested replies -------------------------------------------------------------------

MacroLanguage = Field(min_length=2, max_length=20, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$",
                      description="BCP 47, e.g. en, zh, zh-CN.")


class MacroIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "name": "Refund on its way", "language": "en", "category": "billing/refund", "emotions": [],
        "body": "Hello {{ customer_name }}, your refund for ticket {{ ticket_number }} is on its way. "
                "Follow it here: {{ status_link }}"}]})

    name: str = Field(min_length=1, max_length=200)
    language: str = MacroLanguage
    category: str | None = Field(default=None, min_length=1, max_length=200,
                                 description="A taxonomy key (any level) it is written for; null: any category.")
    emotions: list[Literal["anger", "frustration", "urgency"]] = Field(
        default_factory=list, description="Written for a customer showing these emotions.")
    body: str = Field(min_length=1, max_length=20000, description=(
        "Text with placeholders {{ customer_name }}, {{ ticket_number }}, {{ expected_time }}, {{ status_link }}."))
    active: bool = True


class MacroUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    language: str | None = Field(default=None, min_length=2, max_length=20,
                                 pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
    category: str | None = Field(default=None, min_length=1, max_length=200)
    emotions: list[Literal["anger", "frustration", "urgency"]] | None = None
    body: str | None = Field(default=None, min_length=1, max_length=20000)
    active: bool | None = None


class MacroPublic(MacroIn):
    id: str
    builtin: bool
    created_at: datetime
    updated_at: datetime


class SuggestedReply(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "macro_id": "0b5b2c4e-5d1e-5b7a-9d8e-1f2a3b4c5d6e", "name": "Duplicate charge reversed", "language": "en",
        "score": 0.71, "prior": 0.77, "similar_uses": 4,
        "reasons": ["written for billing/unexpected_charge", "chosen 4 times on similar tickets"],
        "text": "Hello Ana, You were right: the payment was taken twice. …"}]})

    macro_id: str
    name: str
    language: str
    score: float = Field(description="0–1; the prior pulled towards what agents chose on similar tickets.")
    prior: float = Field(description="What the macro was written for (category, emotions), 0–1.")
    similar_uses: int = Field(description="Times agents sent it on tickets of the same category (or top level).")
    reasons: list[str]
    text: str = Field(description="The macro with this ticket's placeholders filled in; the agent edits it and "
                                  "sends the final text as a comment with `macro_id`.")


# --- incidents ------------------------------------------------------------------------------------------


class IncidentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "title": "Card payments failing", "description": "PSP outage since 09:40, failover in progress.",
        "public_message": {"en": "We know card payments are failing right now and are fixing it. "
                                 "No need to retry; we will write when it works again.",
                           "zh": "我们已知悉目前银行卡支付失败的问题，正在修复中。无需重试，恢复后我们会通知您。"},
        "categories": ["billing/payment_failure"], "keywords": ["payment failed"]}]})

    title: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1, max_length=20000, description="Internal: what is going on.")
    public_message: dict[str, str] = Field(min_length=1, description="What customers are told, by language "
                                                                     "(en used when theirs is missing).")
    categories: list[str] = Field(default_factory=list, description="Taxonomy keys (any level) it covers.")
    keywords: list[str] = Field(default_factory=list, description="Any of these in the text also matches.")


class IncidentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, min_length=1, max_length=20000)
    public_message: dict[str, str] | None = Field(default=None, min_length=1)
    categories: list[str] | None = None
    keywords: list[str] | None = None


class IncidentConfirm(BaseModel):
    """An operator turns a spike alert into a declared incident."""

    model_config = ConfigDict(extra="forbid")

    public_message: dict[str, str] = Field(min_length=1)
    categories: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    description: str | None = Field(default=None, max_length=20000)


class IncidentPublic(BaseModel):
    id: str
    title: str
    description: str
    public_message: dict[str, str]
    categories: list[str]
    keywords: list[str]
    status: Literal["proposed", "open", "resolved"]
    source: Literal["declared", "alert"]
    alert: dict[str, object] | None
    confirmed_by: str | None
    created_at: datetime
    updated_at: datetime
    ticket_count: int = Field(0, description="Tickets linked to it.")


# --- reports ---------------------------------------------------------------------------------------------


class Durations(BaseModel):
    count: int
    median_minutes: float | None
    p90_minutes: float | None


class ResponseTimesGroup(BaseModel):
    team: str | None = None
    priority: str | None = None
    first_response: Durations
    resolution: Durations


class ResponseTimesReport(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "since": "2026-11-17T00:00:00Z", "until": "2026-11-24T00:00:00Z",
        "overall": {"first_response": {"count": 40, "median_minutes": 22.5, "p90_minutes": 95.0},
                    "resolution": {"count": 31, "median_minutes": 300.0, "p90_minutes": 1440.0}},
        "by_team": [], "by_priority": []}]})

    since: datetime
    until: datetime
    overall: ResponseTimesGroup
    by_team: list[ResponseTimesGroup]
    by_priority: list[ResponseTimesGroup]


class ComplianceRow(BaseModel):
    team: str
    priority: str
    target: str
    met: int = Field(description="Targets reached before their due time.")
    breached: int
    compliance: float | None = Field(description="met / (met + breached); null when nothing finished yet.")


class ComplianceReport(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "since": "2026-11-17T00:00:00Z", "until": "2026-11-24T00:00:00Z", "overall": 0.93,
        "rows": [{"team": "payments", "priority": "P1", "target": "first_response", "met": 14, "breached": 1,
                  "compliance": 0.933}]}]})

    since: datetime
    until: datetime
    overall: float | None
    rows: list[ComplianceRow]


class BacklogGroup(BaseModel):
    key: str
    open_tickets: int
    breached: int
    oldest_created_at: datetime | None


class BacklogReport(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "total": 12, "unassigned": 3, "by_status": {"new": 3, "open": 7, "pending": 2},
        "by_team": [{"key": "payments", "open_tickets": 5, "breached": 1,
                     "oldest_created_at": "2026-11-20T10:00:00Z"}], "by_priority": []}]})

    total: int
    unassigned: int
    by_status: dict[str, int]
    by_team: list[BacklogGroup]
    by_priority: list[BacklogGroup]


class CsatGroup(BaseModel):
    key: str
    responses: int
    average: float | None


class CsatReport(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "since": "2026-11-17T00:00:00Z", "until": "2026-11-24T00:00:00Z", "responses": 20, "average": 4.3,
        "satisfied_share": 0.85, "distribution": {"1": 1, "2": 0, "3": 2, "4": 5, "5": 12},
        "by_team": [{"key": "payments", "responses": 8, "average": 4.5}]}]})

    since: datetime
    until: datetime
    responses: int
    average: float | None
    satisfied_share: float | None = Field(description="Share of 4 and 5 scores.")
    distribution: dict[str, int]
    by_team: list[CsatGroup]


class TopIssue(BaseModel):
    category: str
    category_label: str
    count: int = Field(description="Tickets and attached duplicates opened in the period.")
    previous_count: int = Field(description="The same in the period of equal length before.")
    change: float | None = Field(description="(count - previous) / previous; null when there was none before.")
    trend: str = Field(description="new, up, down or flat", examples=["up"])


class TopIssuesReport(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "since": "2026-11-17T00:00:00Z", "until": "2026-11-24T00:00:00Z",
        "items": [{"category": "billing/unexpected_charge", "category_label": "Unexpected or duplicate charge",
                   "count": 42, "previous_count": 20, "change": 1.1, "trend": "up"}]}]})

    since: datetime
    until: datetime
    items: list[TopIssue]
