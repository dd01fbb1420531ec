"""Admin pages over what is otherwise configured through the APIs: taxonomy, models, routing rules,
SLA policies, agents, webhooks and dead letters, notification templates.

Leads and admins configure (`config:write`; models need `models:write`); agents and analysts get 403
here, from the server. Structured settings (rule conditions, business hours) are edited as JSON with
the API's example filled in; the API's field errors come back onto the page."""

import asyncio
import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from console.i18n import _
from console.pages.workspace import forget_taxonomy
from console.upstream import SERVICES, UpstreamError, UserApi
from console.web import User, act, needs, redirect, render

router = APIRouter(prefix="/admin", tags=["console: admin"], include_in_schema=False)
ConfigUser = Annotated[User, needs("config:write")]
ModelsUser = Annotated[User, needs("models:write")]

RULE_EXAMPLE = {"name": "VIP fraud to trust & safety", "position": 5, "enabled": True,
                "conditions": {"categories": ["security"], "customer_tiers": ["vip"], "keywords": ["fraud"]},
                "actions": {"team": "trust-and-safety", "priority": "P0", "tags": ["fraud"]}}
DRY_RUN_EXAMPLE = {"category": "security/fraud_phishing", "sentiment": "negative", "sentiment_score": 0.9,
                   "customer_tier": "vip", "channel": "email", "language": "en", "severity": "critical",
                   "text": "Someone used my card for a payment I never made"}
POLICY_EXAMPLE = {"name": "P1 enterprise", "priority": "P1", "customer_tier": "enterprise",
                  "first_response_minutes": 60, "resolution_minutes": 480, "warn_at_share": 0.8,
                  "escalate_on_breach": True,
                  "business_hours": {"timezone": "Asia/Shanghai",
                                     "weekly": {d: ["09:00", "18:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
                                     "holidays": ["2027-01-01"]}}


def _json(text: str, field: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UpstreamError("console", 422, {"errors": [{"field": field, "message": f"not JSON: {exc}"}]}) from exc


@router.get("")
async def admin_home(request: Request, user: ConfigUser) -> Response:
    return render(request, "admin/index.html", user)


# --- taxonomy ----------------------------------------------------------------------------------

def tree(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    children: dict[str | None, list[dict[str, Any]]] = {}
    for node in nodes:
        children.setdefault(node.get("parent"), []).append(node)
    return [{**top, "children": children.get(top["key"], [])} for top in children.get(None, [])]


@router.get("/taxonomy")
async def taxonomy_page(request: Request, user: ConfigUser) -> Response:
    active, versions = await asyncio.gather(user.api.get("classify", "/v1/taxonomy"),
                                            user.api.get("classify", "/v1/taxonomy/versions"))
    return render(request, "admin/taxonomy.html", user, taxonomy=active, tree=tree(active["nodes"]),
                  versions=versions)


@router.post("/taxonomy/nodes")
async def taxonomy_node(user: ConfigUser, path: Annotated[str, Form()], name: Annotated[str, Form()],
                        description: Annotated[str, Form()] = "", examples: Annotated[str, Form()] = "") -> Response:
    body = {"path": path.strip(), "name": name.strip(), "description": description.strip(),
            "examples": [line.strip() for line in examples.splitlines() if line.strip()]}
    forget_taxonomy()
    return await act(user.api.post("classify", "/v1/taxonomy/nodes", body), "/admin/taxonomy",
                     _("Saved %(path)s (a new taxonomy version).", path=path))


@router.post("/taxonomy/nodes/delete")
async def taxonomy_delete(user: ConfigUser, path: Annotated[str, Form()]) -> Response:
    forget_taxonomy()
    return await act(user.api.delete("classify", f"/v1/taxonomy/nodes/{path}"), "/admin/taxonomy",
                     _("Removed %(path)s (a new taxonomy version).", path=path))


@router.post("/taxonomy/versions/{version}/activate")
async def taxonomy_activate(user: ConfigUser, version: str) -> Response:
    forget_taxonomy()
    return await act(user.api.post("classify", f"/v1/taxonomy/versions/{version}/activate"), "/admin/taxonomy",
                     _("Taxonomy version %(v)s is active.", v=version))


# --- models ------------------------------------------------------------------------------------

@router.get("/models")
async def models_page(request: Request, user: ModelsUser) -> Response:
    models, active, examples = await asyncio.gather(
        user.api.get("classify", "/v1/models"), user.api.get("classify", "/v1/models/active"),
        user.api.get("classify", "/v1/training-examples", limit=1))
    return render(request, "admin/models.html", user, models=models["items"], active=active,
                  examples_total=(examples or {}).get("total"))


@router.post("/models")
async def train(user: ModelsUser, activate: Annotated[str, Form()] = "") -> Response:
    return await act(user.api.post("classify", "/v1/models", {"activate": activate == "on"}), "/admin/models",
                     _("Training started."))


@router.post("/models/{model_id}/activate")
async def activate_model(user: ModelsUser, model_id: str) -> Response:
    return await act(user.api.post("classify", f"/v1/models/{model_id}/activate"), "/admin/models",
                     _("Model activated."))


@router.post("/models/rollback")
async def rollback(user: ModelsUser) -> Response:
    return await act(user.api.post("classify", "/v1/models/rollback"), "/admin/models", _("Rolled back."))


# --- routing rules -----------------------------------------------------------------------------

async def _rules_page(request: Request, user: User, dry_run_input: str, dry_run: dict[str, Any] | None = None,
                      dry_run_error: str | None = None) -> Response:
    rules, teams = await asyncio.gather(user.api.get("ticketing", "/v1/routing-rules"),
                                        user.api.get("ticketing", "/v1/teams"))
    return render(request, "admin/rules.html", user, rules=rules, teams=teams,
                  example=json.dumps(RULE_EXAMPLE, indent=2, ensure_ascii=False), dry_run_input=dry_run_input,
                  dry_run=dry_run, dry_run_error=dry_run_error)


@router.get("/routing-rules")
async def rules_page(request: Request, user: ConfigUser) -> Response:
    return await _rules_page(request, user, json.dumps(DRY_RUN_EXAMPLE, indent=2, ensure_ascii=False))


@router.post("/routing-rules")
async def add_rule(user: ConfigUser, rule: Annotated[str, Form()]) -> Response:
    return await act(user.api.post("ticketing", "/v1/routing-rules", _json(rule, "rule")), "/admin/routing-rules",
                     _("Rule added."))


@router.post("/routing-rules/{rule_id}/toggle")
async def toggle_rule(user: ConfigUser, rule_id: str) -> Response:
    rule = await user.api.get("ticketing", f"/v1/routing-rules/{rule_id}")
    body = {k: rule[k] for k in ("name", "position", "conditions", "actions")} | {"enabled": not rule["enabled"]}
    return await act(user.api.put("ticketing", f"/v1/routing-rules/{rule_id}", body), "/admin/routing-rules",
                     _("Rule changed."))


@router.post("/routing-rules/{rule_id}/delete")
async def delete_rule(user: ConfigUser, rule_id: str) -> Response:
    return await act(user.api.delete("ticketing", f"/v1/routing-rules/{rule_id}"), "/admin/routing-rules",
                     _("Rule deleted."))


@router.post("/routing-rules/dry-run")
async def dry_run(request: Request, user: ConfigUser, message: Annotated[str, Form()]) -> Response:
    try:
        result = await user.api.post("ticketing", "/v1/routing-rules/dry-run", _json(message, "message"))
    except UpstreamError as exc:
        if exc.status in (401, 403):
            raise
        return await _rules_page(request, user, message, dry_run_error=exc.detail)
    return await _rules_page(request, user, message, dry_run=result)


# --- SLA policies ------------------------------------------------------------------------------

@router.get("/sla-policies")
async def policies_page(request: Request, user: ConfigUser) -> Response:
    policies = await user.api.get("ticketing", "/v1/sla-policies")
    return render(request, "admin/sla.html", user, policies=policies,
                  example=json.dumps(POLICY_EXAMPLE, indent=2, ensure_ascii=False))


@router.post("/sla-policies")
async def save_policy(user: ConfigUser, policy: Annotated[str, Form()],
                      policy_id: Annotated[str, Form()] = "") -> Response:
    body = _json(policy, "policy")
    call = (user.api.put("ticketing", f"/v1/sla-policies/{policy_id}", body) if policy_id
            else user.api.post("ticketing", "/v1/sla-policies", body))
    return await act(call, "/admin/sla-policies", _("Policy saved."))


@router.post("/sla-policies/{policy_id}/delete")
async def delete_policy(user: ConfigUser, policy_id: str) -> Response:
    return await act(user.api.delete("ticketing", f"/v1/sla-policies/{policy_id}"), "/admin/sla-policies",
                     _("Policy deleted."))


# --- agents ------------------------------------------------------------------------------------

def _list(text: str) -> list[str]:
    return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]


@router.get("/agents")
async def agents_page(request: Request, user: ConfigUser) -> Response:
    agents, teams = await asyncio.gather(user.api.get("ticketing", "/v1/agents"),
                                         user.api.get("ticketing", "/v1/teams"))
    return render(request, "admin/agents.html", user, agents=agents, teams=teams)


@router.post("/agents")
async def save_agent(user: ConfigUser, agent_id: Annotated[str, Form()], name: Annotated[str, Form()],
                     teams: Annotated[str, Form()], skills: Annotated[str, Form()] = "",
                     languages: Annotated[str, Form()] = "", capacity: Annotated[int, Form()] = 5,
                     status: Annotated[str, Form()] = "online", existing: Annotated[str, Form()] = "") -> Response:
    body: dict[str, Any] = {"name": name, "teams": _list(teams), "skills": _list(skills),
                            "languages": _list(languages), "capacity": capacity, "status": status}
    call = (user.api.patch("ticketing", f"/v1/agents/{agent_id}", body) if existing
            else user.api.post("ticketing", "/v1/agents", {"id": agent_id, **body}))
    return await act(call, "/admin/agents", _("Agent %(id)s saved.", id=agent_id))


# --- webhooks, deliveries and dead letters -------------------------------------------------------

@router.get("/webhooks")
async def webhooks_page(request: Request, user: ConfigUser) -> Response:
    async def letters(service: str) -> tuple[str, list | str]:
        try:
            return service, (await user.api.get(service, "/v1/dead-letters"))["items"]
        except UpstreamError as exc:
            return service, exc.detail

    webhooks, failed, *dead = await asyncio.gather(
        user.api.get("notify", "/v1/webhooks"), user.api.get("notify", "/v1/deliveries", status="failed", limit=50),
        *(letters(s) for s in SERVICES))
    return render(request, "admin/webhooks.html", user, webhooks=webhooks, failed=failed["items"],
                  failed_total=failed["total"], dead_letters=dict(dead), created=None)


@router.post("/webhooks")
async def add_webhook(request: Request, user: ConfigUser, name: Annotated[str, Form()], url: Annotated[str, Form()],
                      event_types: Annotated[str, Form()] = "") -> Response:
    body = {"name": name, "url": url, "event_types": _list(event_types) or ["*"]}
    try:
        created = await user.api.post("notify", "/v1/webhooks", body)
    except UpstreamError as exc:
        if exc.status in (401, 403):
            raise
        return redirect("/admin/webhooks", _("Not done: %(reason)s", reason=exc.detail))
    # The signing secret is shown once, on this page only.
    return redirect("/admin/webhooks", _("Webhook added; its signing secret (shown once): %(secret)s",
                                         secret=created.get("secret", "")))


@router.post("/webhooks/{endpoint_id}/delete")
async def delete_webhook(user: ConfigUser, endpoint_id: str) -> Response:
    return await act(user.api.delete("notify", f"/v1/webhooks/{endpoint_id}"), "/admin/webhooks",
                     _("Webhook removed."))


@router.post("/deliveries/{delivery_id}/replay")
async def replay_delivery(user: ConfigUser, delivery_id: str) -> Response:
    return await act(user.api.post("notify", f"/v1/deliveries/{delivery_id}/replay"), "/admin/webhooks",
                     _("Delivery sent again."))


@router.post("/dead-letters/{service}/{sequence}/replay")
async def replay_dead_letter(user: ConfigUser, service: str, sequence: int) -> Response:
    if service not in SERVICES:
        return redirect("/admin/webhooks", _("No such service."))
    return await act(user.api.post(service, f"/v1/dead-letters/{sequence}/replay"), "/admin/webhooks",
                     _("Dead letter replayed."))


# --- notification templates -----------------------------------------------------------------------

@router.get("/templates")
async def templates_page(request: Request, user: ConfigUser, template_id: str | None = None) -> Response:
    templates = await user.api.get("notify", "/v1/templates")
    items = templates["items"] if isinstance(templates, dict) else templates
    chosen = next((t for t in items if t["id"] == template_id), None)
    preview = await _preview(user.api, template_id) if chosen else None
    return render(request, "admin/templates.html", user, templates=items, chosen=chosen, preview=preview)


async def _preview(api: UserApi, template_id: str | None) -> dict[str, Any] | str | None:
    try:
        return await api.post("notify", f"/v1/templates/{template_id}/preview", {})
    except UpstreamError as exc:
        return exc.detail


@router.post("/templates/{template_id}")
async def save_template(user: ConfigUser, template_id: str, subject: Annotated[str, Form()] = "",
                        body_text: Annotated[str, Form()] = "", body_html: Annotated[str, Form()] = "") -> Response:
    current = await user.api.get("notify", f"/v1/templates/{template_id}")
    body = {k: current[k] for k in ("key", "channel", "language")} | {
        "subject": subject or None, "body_text": body_text, "body_html": body_html or None}
    return await act(user.api.put("notify", f"/v1/templates/{template_id}", body),
                     f"/admin/templates?template_id={template_id}", _("Template saved."))
