"""Training runs: `POST /v1/models`, scheduled retraining and agents' corrections queue a row
(`queue_training`); in the background this worker claims it, trains, and stores the model (artefact blob,
metrics) in the same row. Progress is written to the row as it goes, so any replica's
`GET /v1/models/{id}` reports it.

Claiming is an UPDATE ... WHERE status = 'queued' (one replica wins). A run left in `training` by a
process that died is queued again when a worker starts (`requeue_interrupted`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

import numpy as np
from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from classify.ml.embedding import Embedder
from classify.ml.engine import ClassificationEngine
from classify.ml.ensemble import TrainParams, train_model
from classify.models import ModelVersion, TaxonomyVersion, TrainingExample
from classify.registry import EngineSync, activate_model, active_model_row, taxonomy_from_row
from classify.schemas.models import ModelIn
from classify.settings import ClassifySettings
from closedloop.errors import ProblemError, conflict
from closedloop.worker import BackgroundWorker

log = logging.getLogger(__name__)

ENCODE_CHUNK = 256  # texts per model call while training: the consumer gets the model in between


async def queue_training(session: AsyncSession, engine: ClassificationEngine, body: ModelIn) -> ModelVersion:
    """Insert a queued run (caller commits). 409 when there is nothing to train on."""
    leaves = {leaf.key for leaf in engine.active.taxonomy.leaves()}
    labels = set(await session.scalars(select(TrainingExample.label).distinct()))
    if len(labels & leaves) < 2:
        raise conflict("Training needs examples of at least two leaves of the active taxonomy; "
                       "post them to /v1/training-examples first.", slug="not-enough-training-data",
                       title="Not enough training data")
    version = (await session.scalar(select(func.max(ModelVersion.version))) or 0) + 1
    params = body.params.model_dump(exclude_none=True) if body.params else {}
    if "weights" in params:
        params["weights"] = list(params["weights"])
    params["activate"] = body.activate
    params["triage_threshold"] = engine.config.triage_threshold
    row = ModelVersion(id=str(uuid.uuid4()), version=version, status="queued", progress=0.0, stage="queued",
                       params=params, taxonomy_version=engine.active.taxonomy.version,
                       embedding_model=engine.embedder.model_name, active=False, created_at=datetime.now(UTC))
    session.add(row)
    await session.flush()
    return row


async def queue_retraining(session: AsyncSession, engine: ClassificationEngine, settings: ClassifySettings) -> None:
    """Queue a run nobody asked for over HTTP (scheduled, or after corrections), in the caller's
    transaction; nothing when there is nothing to train on."""
    try:
        activate: bool | Literal["if_better"] = "if_better" if settings.auto_activate_retrained else False
        await queue_training(session, engine, ModelIn(activate=activate))
    except ProblemError:
        return
    # The worker polls; the run starts once this transaction has committed.


async def retrain_if_corrected(session: AsyncSession, retrain_after: int,
                               queue: Callable[[AsyncSession], Awaitable[None]]) -> None:
    """Queue a run once `retrain_after` corrections arrived since the last run, unless one is queued or
    training already."""
    busy = await session.scalar(select(func.count()).select_from(ModelVersion)
                                .where(ModelVersion.status.in_(("queued", "training"))))
    if busy:
        return
    last = await session.scalar(select(func.max(ModelVersion.created_at)))
    query = select(func.count()).select_from(TrainingExample).where(TrainingExample.source == "recategorized")
    if last is not None:
        query = query.where(TrainingExample.created_at > last)
    corrections = await session.scalar(query) or 0
    if corrections >= retrain_after:
        await queue(session)


async def activate_when_ready(sessions: async_sessionmaker[AsyncSession], sync: EngineSync,
                              settings: ClassifySettings, model_id: str, only_if_better: bool) -> None:
    """A run asked to be activated once ready (`activate`): activate it, or with `if_better` only when it is
    not less accurate than the active model (within `auto_activate_tolerance`)."""
    async with sessions() as session, session.begin():
        row = await session.get(ModelVersion, model_id)
        current = await active_model_row(session)
        if only_if_better and current is not None and row is not None:
            new_accuracy = (row.metrics or {}).get("accuracy", 0.0)
            old_accuracy = (current.metrics or {}).get("accuracy", 0.0)
            if new_accuracy < old_accuracy - settings.auto_activate_tolerance:
                log.info("retrained model not activated: less accurate than the active one",
                         extra={"model_id": model_id, "accuracy": new_accuracy, "active": old_accuracy})
                return
        await activate_model(session, row)
    await sync.refresh()


class TrainingWorker(BackgroundWorker):
    name = "classify-trainer"
    first_pass_at_start = False
    # A run takes minutes: stopping does not wait for it (the next start requeues the interrupted run).
    stop_grace_seconds = 0.0

    def __init__(self, embedder: Embedder, sessions: async_sessionmaker[AsyncSession],
                 settings: ClassifySettings, poll_seconds: float = 2.0) -> None:
        self.embedder = embedder
        self.sessions = sessions
        self.settings = settings
        self.poll_seconds = poll_seconds
        self._progress: tuple[float, str] = (0.0, "queued")
        self.on_ready: Any = None  # async callable(model_id, only_if_better): activation
        self.queue_scheduled: Any = None  # async callable(session): queue a run (scheduled retraining)

    def between_passes(self) -> float:
        return self.poll_seconds

    async def before_first_pass(self) -> None:
        await self.requeue_interrupted()

    async def run_pass(self) -> bool:
        await self._maybe_schedule()
        while (model_id := await self._claim()) is not None:
            await self._train(model_id)
        return False

    async def _maybe_schedule(self) -> None:
        """Scheduled retraining: every `retrain_interval_hours`, when examples arrived since the last run."""
        interval = self.settings.retrain_interval_hours
        if interval <= 0 or self.queue_scheduled is None:
            return
        now = datetime.now(UTC)
        async with self.sessions() as session, session.begin():
            busy = await session.scalar(select(func.count()).select_from(ModelVersion)
                                        .where(ModelVersion.status.in_(("queued", "training"))))
            last = await session.scalar(select(func.max(ModelVersion.created_at)))
            if busy or (last is not None and last > now - timedelta(hours=interval)):
                return
            newer = select(func.count()).select_from(TrainingExample)
            if last is not None:
                newer = newer.where(TrainingExample.created_at > last)
            if await session.scalar(newer):
                await self.queue_scheduled(session)

    async def requeue_interrupted(self) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(update(ModelVersion).where(ModelVersion.status == "training")
                                  .values(status="queued", progress=0.0, stage="queued (interrupted run restarted)"))

    async def _claim(self) -> str | None:
        async with self.sessions() as session, session.begin():
            candidate = await session.scalar(select(ModelVersion.id).where(ModelVersion.status == "queued")
                                              .order_by(ModelVersion.version).limit(1))
            if candidate is None:
                return None
            claimed = cast(CursorResult[Any], await session.execute(
                update(ModelVersion).where(ModelVersion.id == candidate, ModelVersion.status == "queued")
                .values(status="training", started_at=datetime.now(UTC), progress=0.0, stage="loading examples")))
            return candidate if claimed.rowcount == 1 else None

    async def _set(self, model_id: str, **values: Any) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(update(ModelVersion).where(ModelVersion.id == model_id).values(**values))

    async def _train(self, model_id: str) -> None:
        started = time.perf_counter()
        try:
            async with self.sessions() as session:
                model = await session.get(ModelVersion, model_id)
                assert model is not None
                taxonomy_row = await session.get(TaxonomyVersion, model.taxonomy_version)
                params = TrainParams.from_dict({"holdout": self.settings.training_holdout,
                                                "seed": self.settings.training_seed, **(model.params or {})})
                threshold = float((model.params or {}).get("triage_threshold", self.settings.triage_threshold))
            if taxonomy_row is None:
                raise ValueError(f"taxonomy version {model.taxonomy_version} is unknown")
            leaves = {leaf.key for leaf in taxonomy_from_row(taxonomy_row).leaves()}
            ids, texts, labels, skipped = await self._examples(leaves)
            if len(set(labels)) < 2:
                raise ValueError("training needs examples of at least two taxonomy leaves "
                                 f"(found {len(texts)} usable examples of {len(set(labels))} labels)")
            embeddings = await self._embeddings(model_id, ids, texts)
            self._progress = (0.5, "fitting")

            def progress(fraction: float, stage: str) -> None:
                self._progress = (0.5 + 0.48 * fraction, stage)

            job = asyncio.create_task(asyncio.to_thread(train_model, embeddings, texts, labels, params,
                                                        threshold, progress,
                                                        getattr(self.embedder, "alternate_view", None)))
            while not job.done():
                await asyncio.wait([job], timeout=1.0)
                fraction, stage = self._progress
                await self._set(model_id, progress=round(fraction, 3), stage=stage[:100])
            result = job.result()
            metrics = {**result.metrics, "skipped_examples": skipped,
                       "total_seconds": round(time.perf_counter() - started, 2)}
            artefact = result.model.to_bytes()
            await self._set(model_id, status="ready", progress=1.0, stage="ready", metrics=metrics,
                            artefact=artefact, n_examples=len(texts), finished_at=datetime.now(UTC))
            log.info("model trained", extra={"model_id": model_id, "accuracy": metrics.get("accuracy"),
                                              "seconds": metrics["total_seconds"]})
            activate = (model.params or {}).get("activate")
            if self.on_ready is not None and activate:
                await self.on_ready(model_id, activate == "if_better")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("training failed", extra={"model_id": model_id})
            await self._set(model_id, status="failed", stage="failed", error=f"{type(exc).__name__}: {exc}"[:2000],
                            finished_at=datetime.now(UTC))

    async def _examples(self, leaves: set[str]) -> tuple[list[int], list[str], list[str], dict[str, int]]:
        """Usable examples: labels of the taxonomy, the latest label per text (a correction wins),
        and only labels with enough examples."""
        async with self.sessions() as session:
            rows = (await session.execute(select(TrainingExample.id, TrainingExample.text_hash,
                                                 TrainingExample.text, TrainingExample.label)
                                          .order_by(TrainingExample.id))).all()
        latest: dict[str, tuple[int, str, str]] = {}
        unknown = 0
        for row_id, text_hash, text, label in rows:
            if label not in leaves:
                unknown += 1
                continue
            latest[text_hash] = (row_id, text, label)
        counts: dict[str, int] = {}
        for _, _, label in latest.values():
            counts[label] = counts.get(label, 0) + 1
        minimum = self.settings.training_min_examples_per_label
        kept = [item for item in latest.values() if counts[item[2]] >= minimum]
        skipped = {"unknown_label": unknown, "superseded": len(rows) - unknown - len(latest),
                   "too_few_for_label": len(latest) - len(kept)}
        return [k[0] for k in kept], [k[1] for k in kept], [k[2] for k in kept], skipped

    async def _embeddings(self, model_id: str, ids: list[int], texts: list[str]) -> np.ndarray:
        """Cached embeddings where the same model made them; the rest are encoded and cached."""
        name = self.embedder.model_name
        vectors = np.zeros((len(ids), self.embedder.dimension), dtype=np.float32)
        missing: list[int] = []
        async with self.sessions() as session:
            cached: dict[int, bytes] = {}
            for start in range(0, len(ids), 5000):
                chunk = ids[start:start + 5000]
                cached.update((row_id, blob) for row_id, blob in (await session.execute(
                    select(TrainingExample.id, TrainingExample.embedding)
                    .where(TrainingExample.id.in_(chunk), TrainingExample.embedding_model == name))).all()
                    if blob is not None)
        for i, row_id in enumerate(ids):
            blob = cached.get(row_id)
            if blob is not None and len(blob) == 4 * self.embedder.dimension:
                vectors[i] = np.frombuffer(blob, dtype=np.float32)
            else:
                missing.append(i)
        for done, start in enumerate(range(0, len(missing), ENCODE_CHUNK)):
            chunk = missing[start:start + ENCODE_CHUNK]
            encoded = await asyncio.to_thread(self.embedder.encode, [texts[i] for i in chunk])
            vectors[chunk] = encoded
            async with self.sessions() as session, session.begin():
                # ORM bulk UPDATE by primary key: one executemany per chunk.
                await session.execute(update(TrainingExample), [
                    {"id": ids[i], "embedding": vector.astype(np.float32).tobytes(), "embedding_model": name}
                    for i, vector in zip(chunk, encoded, strict=True)])
                total = max(1, -(-len(missing) // ENCODE_CHUNK))
                fraction = 0.5 * (done + 1) / total
                await session.execute(update(ModelVersion).where(ModelVersion.id == model_id).values(
                    progress=round(fraction, 3), stage=f"embedding examples ({min(start + ENCODE_CHUNK, len(missing))}"
                                                        f"/{len(missing)})"))
        return vectors
