"""The classify application: `uvicorn --factory classify.main:create_app`."""

import asyncio
from pathlib import Path

from fastapi import FastAPI

from classify.api import classifications
from classify.consumer import FeedbackReceivedHandler
from classify.engine import load_engine
from classify.models import InboxMessage, outbox
from classify.settings import ClassifySettings
from classify.taxonomy import load_taxonomy
from closedloop.api import create_service_app
from closedloop.events import FeedbackReceivedV1
from closedloop.messaging.consumer import Subscription
from closedloop.runtime import ServiceRuntime

SERVICE_DIR = Path(__file__).resolve().parent.parent


def create_app(settings: ClassifySettings | None = None) -> FastAPI:
    settings = settings or ClassifySettings()
    taxonomy = load_taxonomy(settings.taxonomy_path or None)
    runtime = ServiceRuntime(settings, SERVICE_DIR, outbox, InboxMessage)

    async def setup(runtime: ServiceRuntime, app: FastAPI) -> None:
        # Loading the model takes seconds: do it before consuming, off the event loop.
        engine = await asyncio.to_thread(load_engine, settings.model_name, taxonomy)
        app.state.engine = engine
        handler = FeedbackReceivedHandler(engine)
        runtime.subscribe(Subscription(
            durable="classify-feedback-received", stream="FEEDBACK",
            subjects={FeedbackReceivedV1.nats_subject: FeedbackReceivedV1},
            handler=handler, prepare=handler.prepare, batch_size=settings.consumer_batch_size,
        ))

    app = create_service_app(
        runtime, title="Closedloop classify",
        description="Understands each piece of feedback: category in a two-level taxonomy and sentiment, "
                    "from sentence embeddings (all-MiniLM-L6-v2), batched per consumer fetch.",
        routers=[classifications.router], setup=setup,
    )
    app.state.taxonomy = taxonomy
    return app
