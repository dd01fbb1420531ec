"""Training examples: stored once per (text, label); the latest label of a text wins at training time."""

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Select, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from classify.models import TrainingExample
from classify.taxonomy import Taxonomy
from closedloop.errors import FieldError, NotFound, ProblemError
from closedloop.pagination import KeysetPage, keyset_page

# A request with thousands of unknown labels names the first ones only.
MAX_FIELD_ERRORS = 50


def text_hash(text: str) -> str:
    # Case and spacing do not make a new example.
    return hashlib.sha256(" ".join(text.lower().split()).encode("utf-8")).hexdigest()


async def add_examples(session: AsyncSession, pairs: list[tuple[str, str]], source: str,
                       feedback_id: str | None = None) -> tuple[int, int]:
    """Store (text, label) pairs not stored yet; returns (accepted, duplicates). Caller commits."""
    now = datetime.now(UTC)
    hashed = [(text, label, text_hash(text)) for text, label in pairs]
    existing: set[tuple[str, str]] = set()
    hashes = sorted({h for _, _, h in hashed})
    for start in range(0, len(hashes), 1000):
        rows = await session.execute(select(TrainingExample.text_hash, TrainingExample.label)
                                     .where(TrainingExample.text_hash.in_(hashes[start:start + 1000])))
        existing.update((h, label) for h, label in rows.all())
    fresh = []
    for text, label, h in hashed:
        if (h, label) in existing:
            continue
        existing.add((h, label))
        fresh.append({"text": text, "text_hash": h, "label": label, "source": source, "feedback_id": feedback_id,
                      "created_at": now})
    for start in range(0, len(fresh), 2000):
        await session.execute(insert(TrainingExample), fresh[start:start + 2000])
    return len(fresh), len(pairs) - len(fresh)


@dataclass
class Added:
    accepted: int
    duplicates: int
    total: int


async def add_labelled(session: AsyncSession, taxonomy: Taxonomy, pairs: list[tuple[str, str]]) -> Added:
    """Store examples sent through the API: every label a leaf of `taxonomy`, or a 422 naming each wrong
    one (`body.examples[i].label`) and nothing stored."""
    leaves = {leaf.key for leaf in taxonomy.leaves()}
    unknown = [(i, label) for i, (_, label) in enumerate(pairs) if label not in leaves]
    if unknown:
        names = sorted({label for _, label in unknown})
        raise ProblemError(
            422, "Unknown labels",
            f"{len(unknown)} example(s) have labels that are not leaves of the active taxonomy "
            f"{taxonomy.version}: {', '.join(names[:20])}{' …' if len(names) > 20 else ''}",
            slug="validation-error",
            errors=[FieldError(field=f"body.examples[{i}].label", message=f"unknown taxonomy leaf {label!r}")
                    for i, label in unknown[:MAX_FIELD_ERRORS]])
    async with session.begin():
        accepted, duplicates = await add_examples(session, pairs, "api")
        total = await session.scalar(select(func.count()).select_from(TrainingExample)) or 0
    return Added(accepted, duplicates, total)


@dataclass
class ExamplesPage:
    page: KeysetPage[TrainingExample]
    total: int
    per_label: dict[str, int]


async def examples_page(session: AsyncSession, label: str | None, source: str | None, limit: int,
                        cursor: str | None, after: int = 0) -> ExamplesPage:
    """Oldest first; `after` (an id) is the deprecated way to page. `total` counts the filters' rows over
    all pages, not only those after `after`; `per_label` counts every stored example by label."""
    query: Select[tuple[TrainingExample]] = select(TrainingExample)
    if label is not None:
        query = query.where(TrainingExample.label == label)
    if source is not None:
        query = query.where(TrainingExample.source == source)
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    page = await keyset_page(session, query.where(TrainingExample.id > after), order=(TrainingExample.id,),
                             limit=limit, cursor=cursor, descending=False, count=False)
    per_label = dict((await session.execute(select(TrainingExample.label, func.count())
                                            .group_by(TrainingExample.label))).tuples().all())
    return ExamplesPage(page, total, per_label)


async def delete_example(session: AsyncSession, example_id: int) -> None:
    async with session.begin():
        result = cast(CursorResult[Any], await session.execute(
            delete(TrainingExample).where(TrainingExample.id == example_id)))
        if result.rowcount == 0:
            raise NotFound("Training example", example_id)
