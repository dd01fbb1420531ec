"""Customers: profiles, survey invitations, and their data rights (export and erasure)."""

from typing import Annotated, Any

from fastapi import Depends, Path, Request, Response

from closedloop.api import SessionDep, api_router, get_or_404
from closedloop.auth import needs
from closedloop.errors import problem_responses
from closedloop.limits import SafeIdPath
from closedloop.ratelimit import rate_limit
from ingest.api.deps import SettingsDep
from ingest.customers import decide_invitation, upsert_customer
from ingest.models import Customer, Erasure
from ingest.rights import erasure_status, export_customer, request_erasure
from ingest.schemas.customers import CustomerProfile, CustomerProfileIn, ErasureStatus, to_profile
from ingest.schemas.invitations import InvitationDecision, InvitationIn

# Per key and per client IP (closedloop.ratelimit; INGEST_RATE_LIMIT_*).
router = api_router("customers", 400, 413, 429, dependencies=[Depends(rate_limit("ingest"))])

CustomerId = SafeIdPath


@router.put("/customers/{customer_id}", dependencies=needs("customers:write"), response_model=CustomerProfile,
            responses={201: {"model": CustomerProfile, "description": "The profile was created."},
                       **problem_responses(404)},
            summary="Create or replace a customer profile")
async def put_customer(customer_id: CustomerId, body: CustomerProfileIn, session: SessionDep,
                       response: Response) -> CustomerProfile:
    """The profile (tier, value, locale, e-mail, name) fills in what a feedback item leaves out and
    travels with each `feedback.received.v1`, where ticketing reads the tier for priority.
    201 when created, 200 when replaced."""
    customer, created = await upsert_customer(session, customer_id, body)
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"/v1/customers/{customer.id}"
    return to_profile(customer)


@router.get("/customers/{customer_id}", dependencies=needs("feedback:read"),
            response_model=CustomerProfile, responses=problem_responses(404),
            summary="A customer profile")
async def get_customer(customer_id: CustomerId, session: SessionDep) -> CustomerProfile:
    customer = await get_or_404(session, Customer, customer_id, "Customer")
    return to_profile(customer)


@router.post("/invitations", dependencies=needs("feedback:write"),
             response_model=InvitationDecision, summary="May this customer be asked for feedback?")
async def invite(body: InvitationIn, session: SessionDep, settings: SettingsDep) -> InvitationDecision:
    """Decides whether the customer may be invited to give feedback now: not when an invitation went
    out within the cool-down (30 days by default, `INGEST_INVITATION_COOLDOWN_DAYS`). When allowed,
    the invitation is recorded (unless `dry_run`), so asking again right after answers `allowed: false`
    with the reason and `next_allowed_at`."""
    return await decide_invitation(session, body, settings.invitation_cooldown_days)


# --- data rights ----------------------------------------------------------------------------------


def forwarded_auth(request: Request) -> dict[str, str]:
    """The caller's own credential, so each service checks its permission for the export too."""
    return {name: request.headers[name] for name in ("x-api-key", "authorization") if name in request.headers}


@router.post("/customers/{customer_id}/erasure", dependencies=needs("customers:write"),
             status_code=202, response_model=ErasureStatus,
             responses=problem_responses(404), summary="Erase everything held about a customer, in every service")
async def erase_customer(customer_id: CustomerId, session: SessionDep, settings: SettingsDep,
                         response: Response) -> ErasureStatus:
    """Announces `customer.erasure_requested.v1`: each service anonymises the customer's texts and personal
    fields, deletes what was derived from them (embeddings, training examples) and reports back with
    `customer.erasure_completed.v1`. Follow the `Location` to see each service's completion. Works for
    customers without a profile too (their feedback is found by customer id)."""
    erasure = await request_erasure(session, customer_id, requested_by=None)
    response.headers["Location"] = f"/v1/erasures/{erasure.id}"
    return ErasureStatus.model_validate(erasure_status(erasure, settings.erasure_services))


@router.get("/erasures/{erasure_id}", dependencies=needs("customers:write"),
            response_model=ErasureStatus, responses=problem_responses(404),
            summary="Progress of an erasure, per service")
async def get_erasure(erasure_id: Annotated[str, Path(max_length=36)], session: SessionDep,
                      settings: SettingsDep) -> ErasureStatus:
    erasure = await get_or_404(session, Erasure, erasure_id, "Erasure")
    return ErasureStatus.model_validate(erasure_status(erasure, settings.erasure_services))


@router.get("/customers/{customer_id}/export", dependencies=needs("customers:write"),
            summary="Everything held about a customer, from every service",
            responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}},
                       **problem_responses(404)})
async def export(customer_id: CustomerId, session: SessionDep, settings: SettingsDep,
                 request: Request) -> dict[str, Any]:
    """Ingest's rows (profile, feedback with the original texts, invitations) plus, asked over each
    service's API with the caller's credential: classifications, tickets with comments, deliveries.
    A service that cannot be reached is listed under `errors` instead of failing the export."""
    return await export_customer(session, customer_id, settings.service_urls(), forwarded_auth(request),
                                 settings.export_max_items)
