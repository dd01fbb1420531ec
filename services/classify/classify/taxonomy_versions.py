"""Changing the taxonomy: a new version from a whole tree or from one node added or removed, or an earlier
version made active again. Each change is a new version row (past classifications keep naming theirs);
each use case opens its own transaction (ADR 0014) and the caller refreshes the engine after it."""

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from classify.models import TaxonomyVersion
from classify.registry import store_taxonomy, taxonomy_from_row
from classify.taxonomy import Taxonomy, TaxonomyError
from closedloop.api import get_or_404
from closedloop.errors import NotFound, field_problem


@dataclass
class StoredTaxonomy:
    taxonomy: Taxonomy
    row: TaxonomyVersion | None
    created: bool | None = None


def build(nodes: list[dict[str, object]] | None, categories: object, field: str) -> Taxonomy:
    """A taxonomy from flat nodes or from the file shape, or the 422 naming `field`."""
    try:
        if nodes is not None:
            return Taxonomy.from_nodes(nodes)
        return Taxonomy.from_dict({"categories": categories})
    except TaxonomyError as exc:
        raise field_problem(field, str(exc), detail=str(exc), title="Invalid taxonomy") from exc


async def active_row(session: AsyncSession) -> TaxonomyVersion:
    row = await session.scalar(select(TaxonomyVersion).where(TaxonomyVersion.active.is_(True)))
    if row is None:
        raise NotFound("Taxonomy", "active")
    return row


async def all_versions(session: AsyncSession) -> list[TaxonomyVersion]:
    """Every version, newest first (a taxonomy has a handful: one per change)."""
    return list(await session.scalars(select(TaxonomyVersion).order_by(TaxonomyVersion.created_at.desc())))


async def replace(session: AsyncSession, taxonomy: Taxonomy) -> StoredTaxonomy:
    """Store and activate `taxonomy`; the same content again is the same version (`created` False)."""
    async with session.begin():
        created = await store_taxonomy(session, taxonomy, "api")
        row = await session.get(TaxonomyVersion, taxonomy.version)
    return StoredTaxonomy(taxonomy, row, created)


async def activate(session: AsyncSession, version: str) -> StoredTaxonomy:
    async with session.begin():
        row = await get_or_404(session, TaxonomyVersion, version, "Taxonomy version")
        taxonomy = taxonomy_from_row(row)
        await store_taxonomy(session, taxonomy, row.source)
    return StoredTaxonomy(taxonomy, row)


def _as_nodes(taxonomy: Taxonomy) -> list[dict[str, object]]:
    parents = {n.parent for n in taxonomy.nodes if n.parent is not None}
    return [{"path": n.key, "name": n.name, "description": n.description, "examples": list(n.examples),
             "_leaf": n.key not in parents} for n in taxonomy.nodes]


async def _active_nodes(session: AsyncSession) -> tuple[Taxonomy, list[dict[str, object]]]:
    async with session.begin():  # a read of its own: the change opens the next transaction
        taxonomy = taxonomy_from_row(await active_row(session))
    return taxonomy, _as_nodes(taxonomy)


async def _replace_with(session: AsyncSession, nodes: list[dict[str, object]], field: str) -> StoredTaxonomy:
    taxonomy = build([{k: v for k, v in n.items() if not k.startswith("_")} for n in nodes], None, field)
    return await replace(session, taxonomy)


async def put_node(session: AsyncSession, node: dict[str, object]) -> StoredTaxonomy:
    """Add a node to the active taxonomy, or replace the node at its path."""
    path = str(node["path"]).strip().strip("/")
    _, nodes = await _active_nodes(session)
    return await _replace_with(session, [n for n in nodes if n["path"] != path] + [node], "body.path")


async def remove_node(session: AsyncSession, path: str) -> StoredTaxonomy:
    """Remove a node and its children from the active taxonomy."""
    taxonomy, nodes = await _active_nodes(session)
    try:
        taxonomy.get(path)
    except KeyError:
        raise NotFound("Taxonomy node", path) from None
    nodes = [n for n in nodes if n["path"] != path and not str(n["path"]).startswith(path + "/")]
    # A parent left without children would silently become a leaf: keep only explicit leaves' paths.
    leaves = [n for n in nodes if n["_leaf"]]
    kept_parents = {str(n["path"]).rsplit("/", 1)[0] for n in leaves if "/" in str(n["path"])}
    nodes = [n for n in nodes if n["_leaf"] or n["path"] in kept_parents
             or any(str(p).startswith(str(n["path"]) + "/") for p in kept_parents)]
    if not nodes:
        raise field_problem("path", "cannot remove the last node", detail="The taxonomy would be empty.",
                            title="Invalid taxonomy")
    return await _replace_with(session, nodes, "path")
