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
