"""The classify application: `uvicorn --factory classify.main:create_app`."""

import asyncio
import functools
from pathlib import Path

from fastapi import FastAPI
from threadpoolctl import threadpool_limits

from classify.alerts import AlertWorker
from classify.api import classifications, config, models, taxonomy, topics, training_examples
from classify.duplicates import refresh_duplicates
from classify.handlers import Handlers
from classify.ml.embedding import Embedder, build_embedder, default_workers
from classify.ml.engine import ActiveModel, ClassificationEngine, DuplicateIndex
from classify.ml.language import DEFAULT_LANGUAGES, UNDETERMINED, LanguageDetector
from classify.ml.prototypes import PrototypeClassifier
from classify.models import InboxMessage, outbox
from classify.registry import EngineSync, ensure_taxonomy
from classify.rights import classify_eraser
from classify.settings import ClassifySettings
from classify.taxonomy import load_taxonomy
from classify.training_runs import TrainingWorker, activate_when_ready, queue_retraining
from closedloop.api import create_service_app
from closedloop.erasure import subscribe_erasure
from closedloop.events import FeedbackReceivedV1, TicketRecategorizedV1
from closedloop.messaging.consumer import Subscription
from closedloop.runtime import ServiceRuntime

SERVICE_DIR = Path(__file__).resolve().parent.parent


@functools.cache
def shared_language_detector(codes: str) -> LanguageDetector:
    return LanguageDetector([c for c in codes.split(",") if c.strip()])


@functools.cache
def shared_embedder(model_name: str, batch_size: int = 32, workers: int = 1,
                    languages: str = DEFAULT_LANGUAGES, quantized: bool = False,
                    cache_dir: str = "var/models", onnx: bool = True) -> Embedder:
    # One copy of the weights per process, however many apps it builds (tests build several).
    detector = shared_language_detector(languages)

    def is_english(texts: list[str]) -> list[bool]:  # a composite runs its English-only model on these
        return [p.language in ("en", UNDETERMINED) for p in detector.detect(texts)]

    return build_embedder(model_name, batch_size=batch_size, workers=workers, is_english=is_english,
                          quantized=quantized, onnx=onnx, cache_dir=cache_dir)


def build_engine(settings: ClassifySettings, file_taxonomy_path: str | None) -> ClassificationEngine:
    """Load the model and the detectors (seconds of work: run it off the event loop)."""
    # The engine's numpy products are small (a batch against a few thousand 384-d vectors). Threaded
    # BLAS gains nothing on them, and its idle threads spin: 6% of all CPU samples in perf during
    # `make bench`, taken from the model. Torch's own threads are not affected. Training runs on one too.
    threadpool_limits(1, user_api="blas")
    embedder = shared_embedder(settings.model_name, settings.embed_batch_size,
                               settings.embed_workers or default_workers(), settings.languages,
                               settings.quantized, settings.model_cache_dir, settings.onnx_runtime)
    taxonomy = load_taxonomy(file_taxonomy_path)
    languages = shared_language_detector(settings.languages)
    duplicates = DuplicateIndex(embedder.dimension, settings.duplicate_window_hours * 3600,
                                settings.duplicate_similarity, settings.duplicate_max_candidates)
    active = ActiveModel(taxonomy=taxonomy, zero_shot=PrototypeClassifier(taxonomy, embedder))
    return ClassificationEngine(embedder, active, languages, duplicates=duplicates)


def create_app(settings: ClassifySettings | None = None) -> FastAPI:
    settings = settings or ClassifySettings()
    runtime = ServiceRuntime(settings, SERVICE_DIR, outbox, InboxMessage)

    async def setup(runtime: ServiceRuntime, app: FastAPI) -> None:
        # Loading the model takes seconds: do it before consuming, off the event loop.
        engine = await asyncio.to_thread(build_engine, settings, settings.taxonomy_path or None)
        if settings.run_migrations:
            await runtime.migrate()  # the registry reads its tables before the runtime starts
        await ensure_taxonomy(runtime.sessions, engine.active.taxonomy)
        sync = EngineSync(engine, runtime.sessions, settings)
        await sync.refresh()
        assert engine.duplicates is not None
        await refresh_duplicates(runtime.read_sessions, engine.duplicates)

        retrain = functools.partial(queue_retraining, engine=engine, settings=settings)
        trainer = TrainingWorker(engine.embedder, runtime.sessions, settings)
        trainer.queue_scheduled = retrain
        trainer.on_ready = functools.partial(activate_when_ready, runtime.sessions, sync, settings)

        app.state.engine, app.state.sync, app.state.trainer = engine, sync, trainer
        handlers = Handlers(engine, runtime.read_sessions, settings.retrain_after_corrections, retrain)
        runtime.subscribe(Subscription(
            durable="classify-feedback-received", stream="FEEDBACK",
            subjects={FeedbackReceivedV1.nats_subject: FeedbackReceivedV1},
            handler=handlers.on_feedback_received, prepare=handlers.prepare_feedback_received,
            batch_size=settings.consumer_batch_size,
        ))
        runtime.subscribe(Subscription(
            durable="classify-ticket-recategorized", stream="TICKET",
            subjects={TicketRecategorizedV1.nats_subject: TicketRecategorizedV1},
            handler=handlers.on_ticket_recategorized,
        ))
        subscribe_erasure(runtime, classify_eraser(engine.duplicates))
        runtime.add_worker(sync)
        runtime.add_worker(trainer)
        runtime.add_worker(AlertWorker(runtime.sessions, settings))

    app = create_service_app(
        runtime, title="Closedloop classify",
        description="Understands each piece of feedback: category in a versioned taxonomy (a trained, calibrated "
                    "model when one is active, zero-shot from the taxonomy otherwise, `needs_triage` when unsure), "
                    "sentiment, emotions, urgency signals and severity, language, near-duplicates and topics; "
                    "raises spike alerts. Training examples and models are managed here too.",
        routers=[classifications.router, taxonomy.router, training_examples.router, models.router, config.router,
                 topics.router],
        setup=setup,
    )
    return app
