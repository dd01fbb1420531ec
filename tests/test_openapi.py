"""The OpenAPI documents are the contract for partners: complete, with errors, and exported."""

import importlib
import json
from pathlib import Path

import pytest

from closedloop.devtools.processes import INSIGHTS, SERVICES

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(params=(*SERVICES, INSIGHTS))
def spec(request, tmp_path, monkeypatch):
    service = request.param
    monkeypatch.setenv(f"{service.upper()}_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/{service}.db")
    app = importlib.import_module(f"{service}.main").create_app()
    return service, app.openapi()


def test_every_api_route_documents_its_problem_responses(spec):
    _, document = spec
    assert "Problem" in document["components"]["schemas"]
    operations = [(path, method, op) for path, item in document["paths"].items() if path.startswith("/v1/")
                  for method, op in item.items()]
    assert operations
    for path, method, operation in operations:
        responses = operation["responses"]
        for status in ("401", "422"):
            assert status in responses, f"{method.upper()} {path} does not document {status}"
            assert "application/problem+json" in responses[status]["content"], f"{method.upper()} {path} {status}"
        if "{" in path:
            assert "404" in responses, f"{method.upper()} {path} does not document 404"


def test_exported_spec_is_up_to_date(spec):
    service, document = spec
    exported = json.loads((ROOT / "docs" / "openapi" / f"{service}.json").read_text(encoding="utf-8"))
    assert exported == document, f"docs/openapi/{service}.json is stale: run `make openapi`"


# Routes that are public on purpose (`closedloop.auth.public(reason)`): anything else must name a scope.
PUBLIC_ROUTES = {
    "/livez", "/readyz",                        # orchestrator probes
    "/.well-known/jwks.json",                   # public keys to verify tokens with
    "/v1/auth/token",                           # login: the password is the credential
    "/v1/auth/oidc/login", "/v1/auth/oidc/callback",  # the identity provider's redirects
}
PUBLIC_PREFIXES = ("/v1/public/", "/tickets/")  # the customer's token pages (JSON and HTML)


def test_every_route_declares_its_permission(spec):
    """Each operation carries `x-required-permission` (written from its `require(...)`), with a known
    scope, and only the routes listed above are public."""
    from closedloop.auth import AUTHENTICATED, PUBLIC, SCOPES

    service, document = spec
    operations = [(path, method, op) for path, item in document["paths"].items() for method, op in item.items()]
    assert operations
    undeclared = [f"{method.upper()} {path}" for path, method, op in operations if "x-required-permission" not in op]
    assert not undeclared, f"{service}: routes without a declared permission: {undeclared}"
    for path, method, op in operations:
        permission = op["x-required-permission"]
        assert permission in SCOPES or permission in (PUBLIC, AUTHENTICATED), f"{method} {path}: {permission}"
        if permission == PUBLIC:
            assert path in PUBLIC_ROUTES or path.startswith(PUBLIC_PREFIXES), f"{method} {path} is public"
        elif permission in SCOPES:
            # The scope is in the security requirement too, where OpenAPI tools look for it.
            assert any(permission in scopes for requirement in op.get("security", []) for scopes in
                       requirement.values()), f"{method} {path}: scope missing from security"


# Request-body fields that name something by id: a client-chosen id or an id from another system.
ID_FIELD_NAMES = {"id", "assignee", "external_id", "thread_id", "review_id", "author_id", "conversation_id",
                  "response_id", "survey_id", "ticket_id", "into_ticket_id", "macro_id", "customer_id"}


def request_schemas(document: dict) -> set[str]:
    """Names of the component schemas that request bodies use (directly or nested)."""
    components = document["components"]["schemas"]
    found: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] not in found:
                found.add(ref.rsplit("/", 1)[1])
                walk(components[ref.rsplit("/", 1)[1]])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for item in document["paths"].values():
        for operation in item.values():
            walk(operation.get("requestBody", {}))
    return found


def constrained(schema: dict) -> bool:
    options = [schema, *schema.get("anyOf", [])]
    return any({"pattern", "format", "enum", "const"} & set(option) for option in options
               if option.get("type") != "null")


def test_every_id_a_client_sends_has_a_character_set(spec):
    """Ids end up in URLs, headers, logs and NATS: the schema says which characters they may have, and
    every string in a URL path of the API has a pattern (closedloop.api checks it on every route)."""
    service, document = spec
    components = document["components"]["schemas"]
    for name in request_schemas(document):
        for field, schema in components[name].get("properties", {}).items():
            if field in ID_FIELD_NAMES:
                assert constrained(schema), f"{service} {name}.{field} takes any characters"
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["schema"].get("type") == "string":
                    assert constrained(parameter["schema"]), f"{service} {method.upper()} {path} {parameter['name']}"


def test_cross_field_rules_are_in_the_schemas():
    import jsonschema

    def check(service: str, schema: str, valid: list[dict], invalid: list[dict]) -> None:
        document = json.loads((ROOT / "docs" / "openapi" / f"{service}.json").read_text(encoding="utf-8"))
        validator = jsonschema.Draft202012Validator({"$ref": f"#/components/schemas/{schema}",
                                                     "components": document["components"]},
                                                    format_checker=jsonschema.FormatChecker())
        for body in valid:
            assert validator.is_valid(body), f"{schema} refuses {body}"
        for body in invalid:
            assert not validator.is_valid(body), f"{schema} accepts {body}"

    check("classify", "ClassifyIn", [{"text": "hi"}, {"items": [{"text": "hi"}]}],
          [{}, {"text": "hi", "items": [{"text": "hi"}]}, {"text": None}])
    check("classify", "TaxonomyIn", [{"nodes": [{"path": "a/b"}]}], [{}, {"nodes": [{"path": "a/b"}],
                                                                            "categories": [{}]}])
    check("identity", "TokenIn", [{"username": "a", "password": "b"}, {"login_code": "c"}],
          [{}, {"username": "a"}, {"username": "a", "password": "b", "login_code": "c"}])
    survey = {"response_id": "r-1", "customer": {"id": "c-1"}}
    check("ingest", "SurveyAnswerIn", [{**survey, "nps": 3}, {**survey, "csat": 4}],
          [survey, {**survey, "nps": 3, "csat": 4}, {**survey, "response_id": "r 1", "nps": 3}])
    check("ingest", "AppReviewIn", [{"review_id": "rv-1", "rating": 2, "text": "meh", "author_id": "u-77"}],
          [{"review_id": "rv-1", "rating": 2, "text": "meh", "author_id": "ünï code"}])
    subscription = {"name": "s", "event_types": ["ticket.*"]}
    check("notify", "SubscriptionIn",
          [{**subscription, "channel": "email", "target": "lead@example.com"},
           {**subscription, "channel": "slack", "target": "https://hooks.slack.com/services/T/B/X"}],
          [{**subscription, "channel": "email", "target": "not an address"},
           {**subscription, "channel": "slack", "target": "hooks.slack.com/x"}])
    check("ticketing", "ScoringWeights", [{"impact": {"billing": 0.5}}], [{"impact": {"billing": 3}}])
