from typing import Annotated

from fastapi import Depends, Path, Request, Response

from closedloop.api import SessionDep, api_router
from closedloop.auth import needs
from closedloop.errors import NotFound, problem_responses
from closedloop.ratelimit import rate_limit
from ingest.customers import decide_invitation, upsert_customer
from ingest.models import Customer
from ingest.schemas import CustomerProfile, CustomerProfileIn, InvitationDecision, InvitationRequest

# Per key and per client IP (closedloop.ratelimit; INGEST_RATE_LIMIT_*).
router = api_router("customers", 400, 413, 429, dependencies=[Depends(rate_limit("ingest"))])

CustomerId = Annotated[str, Path(min_length=1, max_length=200, examples=["cust-1042"])]


def to_profile(customer: Customer) -> CustomerProfile:
    return CustomerProfile(id=customer.id, email=customer.email, name=customer.name, tier=customer.tier,
                           value=customer.value, locale=customer.locale, created_at=customer.created_at,
                           updated_at=customer.updated_at)


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
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise NotFound("Customer", customer_id)
    return to_profile(customer)


@router.post("/invitations", dependencies=needs("feedback:write"),
             response_model=InvitationDecision, summary="May this customer be asked for feedback?")
async def invite(body: InvitationRequest, session: SessionDep, request: Request) -> InvitationDecision:
    """Decides whether the customer may be invited to give feedback now: not when an invitation went
    out within the cool-down (30 days by default, `INGEST_INVITATION_COOLDOWN_DAYS`). When allowed,
    the invitation is recorded (unless `dry_run`), so asking again right after answers `allowed: false`
    with the reason and `next_allowed_at`."""
    return await decide_invitation(session, body, request.app.state.settings.invitation_cooldown_days)
