"""The console application: `uvicorn --factory console.main:create_app`."""

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from closedloop.api import create_service_app
from closedloop.runtime import ServiceRuntime
from console.live import LiveHub
from console.models import InboxMessage, outbox
from console.pages import admin, auth, dashboards, insights_section, workspace
from console.pages import insights as insights_charts  # noqa: F401 - importing it registers its charts
from console.settings import ConsoleSettings
from console.upstream import Upstream
from console.web import install_page_errors

SERVICE_DIR = Path(__file__).resolve().parent.parent
STATIC_DIR = Path(__file__).resolve().parent / "static"


class _UpstreamClients:
    """Closes the connection pools to the other services when the process stops."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream

    def start(self) -> None:
        pass

    async def stop(self) -> None:
        await self.upstream.close()


def create_app(settings: ConsoleSettings | None = None) -> FastAPI:
    settings = settings or ConsoleSettings()
    runtime = ServiceRuntime(settings, SERVICE_DIR, outbox, InboxMessage)
    hub = LiveHub(runtime.broker)
    upstream = Upstream(settings)
    runtime.add_worker(hub)
    runtime.add_worker(_UpstreamClients(upstream))
    app = create_service_app(
        runtime, title="Closedloop console",
        description="The agent workspace, team-lead dashboards and admin pages, server-rendered. Calls the other "
                    "services' public APIs with the signed-in user's credentials; stores only sessions and "
                    "preferences.",
        routers=[auth.router, workspace.router, dashboards.router, insights_section.router, admin.router],
    )
    app.state.live = hub
    app.state.upstream = upstream
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    install_page_errors(app)
    return app
