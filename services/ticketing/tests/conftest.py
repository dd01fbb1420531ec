"""Fixtures for ticketing's tests (fixtures only: test modules are imported with importlib). The app runs on
a manual clock that starts on a Monday at 09:00 UTC (ticketing.testing.make_app: fast polls)."""

import pytest

from ticketing.clock import ManualClock
from ticketing.testing import MONDAY_9_UTC, make_app


@pytest.fixture
def clock():
    return ManualClock(MONDAY_9_UTC)


@pytest.fixture
def app(database_url, nats_server, clock):
    return make_app(database_url, nats_server.url, clock)
