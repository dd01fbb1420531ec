"""Fixtures for the cross-service tests (the system itself lives in tests/system.py)."""

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from closedloop.devtools.processes import SERVICES
from closedloop.testing import create_postgres_database, drop_postgres_database
from tests.system import System, start_system, stop_system


@pytest.fixture
def system(tmp_path: Path) -> Iterator[System]:
    databases = {name: f"sqlite+aiosqlite:///{tmp_path / (name + '.db')}" for name in SERVICES}
    running = start_system(tmp_path, databases)
    yield running
    stop_system(running)


@pytest.fixture
async def postgres_databases() -> AsyncIterator[dict[str, str]]:
    names = {service: f"cl_e2e_{service}_{uuid.uuid4().hex[:8]}" for service in SERVICES}
    urls = {service: await create_postgres_database(name) for service, name in names.items()}
    yield urls
    for name in names.values():
        await drop_postgres_database(name)




@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # type: ignore[no-untyped-def]
    """Keep each phase's report on the test item, so fixtures can tell a failed test (browser screenshots)."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
