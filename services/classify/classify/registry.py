"""What is active — taxonomy version, trained model, run-time config — lives in the database, so every
replica agrees and a restart changes nothing. `EngineSync` keeps this process's engine in step with it.

Taxonomy file policy: at start-up the file (`CLASSIFY_TAXONOMY_PATH`, or the packaged default) is
stored as a version; if that version is new to the database it becomes active (an operator shipped a
new file), otherwise the active version stays whatever the API last made it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import undefer

from classify.ml.engine import FIELDS, ClassificationEngine, EngineConfig
from classify.ml.ensemble import EnsembleModel
from classify.models import ConfigEntry, ModelVersion, TaxonomyVersion
from classify.settings import ClassifySettings
from classify.taxonomy import Taxonomy
from closedloop.worker import BackgroundWorker

log = logging.getLogger(__name__)

_UNSET = object()
CONFIG_KEYS = ("triage_threshold", "zero_shot_triage_threshold", "novelty_check", "novelty_confidence",
               *(f"{f}_mode" for f in FIELDS))


def taxonomy_from_row(row: TaxonomyVersion) -> Taxonomy:
    return Taxonomy.from_dict(row.document, require_two_levels=False)


async def store_taxonomy(session: AsyncSession, taxonomy: Taxonomy, source: str, activate: bool = True) -> bool:
    """Store `taxonomy` as a version (if new) and make it the active one. Returns whether it was new."""
    now = datetime.now(UTC)
    row = await session.get(TaxonomyVersion, taxonomy.version)
    created = row is None
    if row is None:
        row = TaxonomyVersion(version=taxonomy.version, document=taxonomy.to_dict(), source=source,
                              active=False, created_at=now)
        session.add(row)
    if activate and not row.active:
        await session.execute(update(TaxonomyVersion).where(TaxonomyVersion.active.is_(True))
                              .values(active=False))
        row.active = True
        row.activated_at = now
    await session.flush()
    return created


async def active_taxonomy(session: AsyncSession) -> Taxonomy | None:
    row = await session.scalar(select(TaxonomyVersion).where(TaxonomyVersion.active.is_(True)))
    return taxonomy_from_row(row) if row is not None else None


async def ensure_taxonomy(sessions: async_sessionmaker[AsyncSession], file_taxonomy: Taxonomy) -> Taxonomy:
    async with sessions() as session, session.begin():
        known = await session.get(TaxonomyVersion, file_taxonomy.version)
        current = await active_taxonomy(session)
        if known is None or current is None:
            await store_taxonomy(session, file_taxonomy, "file")
            return file_taxonomy
        return current


async def active_model_row(session: AsyncSession, with_artefact: bool = False) -> ModelVersion | None:
    query = select(ModelVersion).where(ModelVersion.active.is_(True))
    if with_artefact:
        query = query.options(undefer(ModelVersion.artefact))
    return await session.scalar(query)


async def activate_model(session: AsyncSession, model: ModelVersion | None) -> None:
    """Make `model` the only active one; None deactivates all (back to zero-shot)."""
    await session.execute(update(ModelVersion).where(ModelVersion.active.is_(True)).values(active=False))
    if model is not None:
        model.active = True
        model.activated_at = datetime.now(UTC)
    await session.flush()


async def previous_model(session: AsyncSession, current: ModelVersion | None) -> ModelVersion | None:
    """The ready model activated most recently before the current one (for rollback)."""
    query = (select(ModelVersion).where(ModelVersion.status == "ready", ModelVersion.activated_at.is_not(None))
             .order_by(ModelVersion.activated_at.desc()))
    if current is not None:
        query = query.where(ModelVersion.id != current.id)
    return await session.scalar(query.limit(1))


def default_config(settings: ClassifySettings) -> dict[str, Any]:
    return {"triage_threshold": settings.triage_threshold,
            "zero_shot_triage_threshold": settings.zero_shot_triage_threshold,
            "novelty_check": settings.novelty_check,
            "novelty_confidence": settings.novelty_confidence,
            **{f"{f}_mode": getattr(settings, f"{f}_mode") for f in FIELDS}}


async def load_config(session: AsyncSession, settings: ClassifySettings) -> dict[str, Any]:
    values = default_config(settings)
    for entry in await session.scalars(select(ConfigEntry)):
        if entry.key in values and entry.value is not None:
            values[entry.key] = entry.value
    return values


def engine_config(values: dict[str, Any]) -> EngineConfig:
    return EngineConfig(triage_threshold=float(values["triage_threshold"]),
                        zero_shot_triage_threshold=float(values["zero_shot_triage_threshold"]),
                        novelty_check=bool(values["novelty_check"]),
                        novelty_confidence=float(values["novelty_confidence"]),
                        modes={f: str(values[f"{f}_mode"]) for f in FIELDS})


async def save_config(session: AsyncSession, changes: dict[str, Any]) -> None:
    now = datetime.now(UTC)
    for key, value in changes.items():
        entry = await session.get(ConfigEntry, key)
        if entry is None:
            session.add(ConfigEntry(key=key, value=value, updated_at=now))
        else:
            entry.value, entry.updated_at = value, now
    await session.flush()


class EngineSync(BackgroundWorker):
    """Polls the database for the active taxonomy, model and config; swaps the engine's state when they
    change. `refresh()` is also called right after this process changes one of them over the API."""

    name = "classify-engine-sync"
    first_pass_at_start = False  # create_app refreshed once already

    def __init__(self, engine: ClassificationEngine, sessions: async_sessionmaker[AsyncSession],
                 settings: ClassifySettings) -> None:
        self.engine = engine
        self.sessions = sessions
        self.settings = settings
        self._lock = asyncio.Lock()
        self._config_stamp: Any = _UNSET  # so the first refresh applies the settings even without overrides

    def between_passes(self) -> float:
        return self.settings.model_poll_seconds

    async def run_pass(self) -> bool:
        await self.refresh()
        return False

    async def refresh(self) -> None:
        async with self._lock:
            async with self.sessions() as session:
                taxonomy = await active_taxonomy(session)
                model = await active_model_row(session)
                stamp = await session.scalar(select(func.max(ConfigEntry.updated_at)))
                values = await load_config(session, self.settings) if stamp != self._config_stamp else None
                artefact = None
                current = self.engine.active
                model_changed = (model.id if model else None) != current.trained_id
                if model is not None and model.embedding_model != self.engine.embedder.model_name:
                    # A model trained on another sentence model's vectors cannot read this one's (another
                    # dimension or another space): zero-shot until a model is trained on this one.
                    log.warning("active model was trained on another embedding model: not used",
                                extra={"model_id": model.id, "embedding_model": model.embedding_model,
                                       "service_model": self.engine.embedder.model_name})
                    model = None
                    model_changed = current.trained_id is not None
                if model is not None and model_changed:
                    artefact = await session.scalar(select(ModelVersion.artefact).where(ModelVersion.id == model.id))
            if values is not None:
                self.engine.config = engine_config(values)
                self._config_stamp = stamp
            if taxonomy is None:
                return
            if taxonomy.version == current.taxonomy.version and not model_changed:
                return
            # Decompressing a model (~14 MB) and building prototypes is CPU work: off the event loop.
            trained = await asyncio.to_thread(EnsembleModel.from_bytes, artefact) if artefact else (
                current.trained if not model_changed else None)
            active = await asyncio.to_thread(
                self.engine.build_active, taxonomy, trained,
                model.id if model and trained else None, model.version if model and trained else None)
            self.engine.active = active
            log.info("engine updated", extra={"taxonomy_version": taxonomy.version,
                                               "model_version": active.model_version})
