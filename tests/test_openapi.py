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
