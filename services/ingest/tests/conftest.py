"""Fixtures for ingest's tests (fixtures only: test modules are imported with importlib)."""

import pytest

from ingest.main import create_app
from ingest.settings import IngestSettings

# Poll the outbox and fetch from NATS quickly, so events leave and arrive within a test's patience.
FAST = {"outbox_poll_seconds": 0.05, "consumer_fetch_timeout_seconds": 0.1}


@pytest.fixture
def make_app(database_url, nats_server):
    """An ingest app on the test's database and NATS: `make_app(max_text_chars=200)`; `fast=False` keeps the
    default polling intervals."""

    def make(fast: bool = True, **overrides):
        return create_app(IngestSettings(database_url=database_url, nats_url=nats_server.url, log_json=False,
                                         **(FAST if fast else {}), **overrides))

    return make


@pytest.fixture
def app(make_app):
    return make_app()
