"""Bad requests to the ingest API: each answers a clear problem+json and stores nothing."""

import json

import pytest
from sqlalchemy import func, select

from closedloop.testing import running_app
from ingest.models import Feedback, IdempotencyKey, OutboxMessage

MAX_TEXT = 50
MAX_BODY = 2_000
GOOD = {"channel": "app", "text": "The app crashes when I pay", "customer": {"id": "c-1"}}


def body(**changes):
    data = json.loads(json.dumps(GOOD))
    for key, value in changes.items():
        if key == "customer":
            data["customer"] = value
        elif value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


async def chunked(payload: bytes):
    """An async body: httpx sends it with Transfer-Encoding: chunked and no Content-Length."""
    for start in range(0, len(payload), 512):
        yield payload[start:start + 512]


@pytest.fixture
def app(make_app):
    return make_app(max_text_chars=MAX_TEXT, max_body_bytes=MAX_BODY)


async def stored(app) -> dict[str, int]:
    async with app.state.runtime.sessions() as session:
        return {model.__tablename__: await session.scalar(select(func.count()).select_from(model))
                for model in (Feedback, OutboxMessage, IdempotencyKey)}


NOTHING = {"feedback": 0, "outbox": 0, "idempotency_keys": 0}
TOO_BIG = json.dumps(body(text="x" * (MAX_BODY + 100))).encode()

# (id, request, expected status, field named in errors[] or None)
CASES = [
    ("empty-text", {"json": body(text="")}, 422, "body.text"),
    ("whitespace-only-text", {"json": body(text=" \n\t\u200b\u00a0 ")}, 422, "body.text"),
    ("text-over-max", {"json": body(text="x" * (MAX_TEXT + 1))}, 422, "body.text"),
    ("text-not-a-string", {"json": body(text=42)}, 422, "body.text"),
    ("missing-text", {"json": body(text=None)}, 422, "body.text"),
    ("unknown-channel", {"json": body(channel="fax")}, 422, "body.channel"),
    ("missing-customer-id", {"json": body(customer={"tier": "vip"})}, 422, "body.customer.id"),
    ("blank-customer-id", {"json": body(customer={"id": "   "})}, 422, "body.customer.id"),
    ("missing-customer", {"json": body(customer=None)}, 422, "body.customer"),
    ("bad-email", {"json": body(customer={"id": "c-1", "email": "not-an-email"})}, 422, "body.customer.email"),
    ("rating-out-of-range", {"json": body(rating=11)}, 422, "body.rating"),
    ("extra-field", {"json": body(surprise=True)}, 422, "body.surprise"),
    ("extra-customer-field", {"json": body(customer={"id": "c-1", "vip": True})}, 422, "body.customer.vip"),
    ("idempotency-key-too-long", {"json": GOOD, "headers": {"Idempotency-Key": "k" * 201}}, 422,
     "header.Idempotency-Key"),
    ("malformed-json", {"content": b'{"channel": "app", "text": ', "headers": {"Content-Type": "application/json"}},
     400, "body"),
    ("wrong-content-type", {"content": b"channel=app&text=hi", "headers": {"Content-Type": "text/plain"}}, 415, None),
    ("form-content-type", {"data": {"channel": "app", "text": "hi"}}, 415, None),
    ("body-too-large", {"content": TOO_BIG, "headers": {"Content-Type": "application/json"}}, 413, None),
    ("body-too-large-chunked", {"content": "chunked", "headers": {"Content-Type": "application/json"}}, 413, None),
    ("missing-api-key", {"json": GOOD, "api_key": None}, 401, None),
    ("wrong-api-key", {"json": GOOD, "api_key": "not-the-key"}, 401, None),
]


@pytest.mark.parametrize(("request_args", "status", "field"), [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])
async def test_bad_submission_is_a_problem_and_stores_nothing(app, request_args, status, field):
    args = dict(request_args)
    api_key = args.pop("api_key", "keep")
    if args.get("content") == "chunked":
        args["content"] = chunked(TOO_BIG)
    async with running_app(app) as client:
        request = client.build_request("POST", "/v1/feedback", **args)
        if api_key is None:
            del request.headers["X-API-Key"]
        elif api_key != "keep":
            request.headers["X-API-Key"] = api_key
        response = await client.send(request)

        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["status"] == status
        assert problem["title"]
        assert problem["instance"] == "/v1/feedback"
        assert problem["type"].startswith("https://closedloop.dev/problems/")
        if field is not None:
            assert field in [error["field"] for error in problem["errors"]], problem
            assert field in problem.get("detail", "") or status == 400
        if status == 401:
            assert response.headers["WWW-Authenticate"].startswith("Bearer, ApiKey")
        assert await stored(app) == NOTHING


async def test_text_at_the_limit_after_cleaning_is_accepted(app):
    async with running_app(app) as client:
        at_limit = ("The app crashes when I pay " * 3)[:MAX_TEXT]
        assert len(at_limit) == MAX_TEXT
        response = await client.post("/v1/feedback", json=body(text="  " + at_limit + "  \n\n"))
        assert response.status_code == 202, response.text
        assert await stored(app) == {"feedback": 1, "outbox": 1, "idempotency_keys": 0}


async def test_bearer_token_is_accepted_as_api_key(app):
    async with running_app(app) as client:
        request = client.build_request("POST", "/v1/feedback", json=GOOD)
        request.headers["Authorization"] = "Bearer " + request.headers.pop("X-API-Key")
        response = await client.send(request)
        assert response.status_code == 202, response.text


async def test_unknown_feedback_is_404_problem(app):
    async with running_app(app) as client:
        response = await client.get("/v1/feedback/00000000-0000-0000-0000-000000000000")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["status"] == 404
        assert problem["type"].endswith("/not-found")
        assert "00000000-0000-0000-0000-000000000000" in problem["detail"]


async def test_reading_feedback_needs_the_api_key(app):
    async with running_app(app) as client:
        created = (await client.post("/v1/feedback", json=GOOD)).json()
        request = client.build_request("GET", f"/v1/feedback/{created['id']}")
        del request.headers["X-API-Key"]
        response = await client.send(request)
        assert response.status_code == 401
        assert "text" not in response.json()


async def test_openapi_documents_problem_responses(app):
    async with running_app(app) as client:
        spec = (await client.get("/openapi.json")).json()
    assert "Problem" in spec["components"]["schemas"]
    operations = [(path, method, operation) for path, methods in spec["paths"].items() if path.startswith("/v1/")
                  for method, operation in methods.items()]
    assert ("/v1/feedback", "post") in [(path, method) for path, method, _ in operations]
    assert ("/v1/feedback/{feedback_id}", "get") in [(path, method) for path, method, _ in operations]
    for path, method, operation in operations:
        expected = {"401", "422"} | ({"404"} if "{" in path else set())
        for status in expected:
            response = operation["responses"].get(status)
            assert response is not None, f"{method.upper()} {path} does not document {status}"
            schema = response["content"]["application/problem+json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Problem"}, (method, path, status)
    submit = spec["paths"]["/v1/feedback"]["post"]["responses"]
    assert {"400", "409", "413", "415"} <= set(submit)
