from sqlalchemy import select

from classify.api.deps import SyncDep
from classify.models import TaxonomyVersion
from classify.registry import EngineSync, store_taxonomy, taxonomy_from_row
from classify.schemas.taxonomy import (
    TaxonomyIn,
    TaxonomyNodeIn,
    TaxonomyNodePublic,
    TaxonomyPublic,
    TaxonomyVersionSummary,
)
from classify.taxonomy import Taxonomy, TaxonomyError
from closedloop.api import SessionDep, api_router, get_or_404
from closedloop.auth import needs
from closedloop.errors import NotFound, field_problem, problem_responses

router = api_router("taxonomy", 400, 413)


def taxonomy_public(taxonomy: Taxonomy, row: TaxonomyVersion | None = None,
                    created: bool | None = None) -> TaxonomyPublic:
    parents = {n.parent for n in taxonomy.nodes if n.parent is not None}
    return TaxonomyPublic(
        version=taxonomy.version, active=row.active if row is not None else True,
        source=row.source if row is not None else None, created=created,
        created_at=row.created_at if row is not None else None,
        nodes=[TaxonomyNodePublic(key=n.key, path=n.key, name=n.name, description=n.description, parent=n.parent,
                                  leaf=n.key not in parents, examples=list(n.examples)) for n in taxonomy.nodes],
    )


@router.get("/taxonomy", dependencies=needs("feedback:read"),
            response_model=TaxonomyPublic, summary="The active taxonomy")
async def get_taxonomy(session: SessionDep) -> TaxonomyPublic:
    row = await session.scalar(select(TaxonomyVersion).where(TaxonomyVersion.active.is_(True)))
    if row is None:
        raise NotFound("Taxonomy", "active")
    return taxonomy_public(taxonomy_from_row(row), row)


@router.put("/taxonomy", dependencies=needs("config:write"), response_model=TaxonomyPublic,
            summary="Replace the active taxonomy (a new version; past classifications keep theirs)",
            description="Send flat `nodes` with paths such as `billing/refund` (parents are implied), or the "
                        "file shape `categories` (the tree of `taxonomy.yaml`, as JSON). Answers the version; "
                        "the same content again answers the same version (`created: false`).")
async def put_taxonomy(body: TaxonomyIn, session: SessionDep, sync: SyncDep) -> TaxonomyPublic:
    try:
        if body.nodes is not None:
            taxonomy = Taxonomy.from_nodes([node.model_dump() for node in body.nodes])
        else:
            taxonomy = Taxonomy.from_dict({"categories": body.categories})
    except TaxonomyError as exc:
        field = "body.nodes" if body.nodes is not None else "body.categories"
        raise field_problem(field, str(exc), detail=str(exc), title="Invalid taxonomy") from exc
    async with session.begin():
        created = await store_taxonomy(session, taxonomy, "api")
        row = await session.get(TaxonomyVersion, taxonomy.version)
    await sync.refresh()
    return taxonomy_public(taxonomy, row, created)


@router.get("/taxonomy/versions", dependencies=needs("feedback:read"), response_model=list[TaxonomyVersionSummary],
            summary="Every taxonomy version, newest first")
async def list_versions(session: SessionDep) -> list[TaxonomyVersionSummary]:
    rows = await session.scalars(select(TaxonomyVersion).order_by(TaxonomyVersion.created_at.desc()))
    return [TaxonomyVersionSummary(version=r.version, source=r.source, active=r.active,
                                   leaves=len(taxonomy_from_row(r).leaves()), created_at=r.created_at,
                                   activated_at=r.activated_at) for r in rows]


@router.get("/taxonomy/versions/{version}", dependencies=needs("feedback:read"),
            response_model=TaxonomyPublic, responses=problem_responses(404),
            summary="One taxonomy version (e.g. the one a past classification names)")
async def get_version(version: str, session: SessionDep) -> TaxonomyPublic:
    row = await get_or_404(session, TaxonomyVersion, version, "Taxonomy version")
    return taxonomy_public(taxonomy_from_row(row), row)


@router.get("/taxonomy/versions/{version}/file", dependencies=needs("feedback:read"), responses=problem_responses(404),
            summary="One taxonomy version in the file shape (`categories` tree, as in taxonomy.yaml)")
async def get_version_file(version: str, session: SessionDep) -> dict[str, object]:
    row = await get_or_404(session, TaxonomyVersion, version, "Taxonomy version")
    return taxonomy_from_row(row).to_dict()


@router.post("/taxonomy/versions/{version}/activate", dependencies=needs("config:write"), response_model=TaxonomyPublic,
             responses=problem_responses(404), summary="Make an earlier taxonomy version active again")
async def activate_version(version: str, session: SessionDep, sync: SyncDep) -> TaxonomyPublic:
    async with session.begin():
        row = await get_or_404(session, TaxonomyVersion, version, "Taxonomy version")
        taxonomy = taxonomy_from_row(row)
        await store_taxonomy(session, taxonomy, row.source)
    await sync.refresh()
    return taxonomy_public(taxonomy, row)


def _as_nodes(taxonomy: Taxonomy) -> list[dict[str, object]]:
    parents = {n.parent for n in taxonomy.nodes if n.parent is not None}
    return [{"path": n.key, "name": n.name, "description": n.description, "examples": list(n.examples),
             "_leaf": n.key not in parents} for n in taxonomy.nodes]


async def _replace_active(session: SessionDep, sync: EngineSync, nodes: list[dict[str, object]],
                          field: str) -> TaxonomyPublic:
    try:
        taxonomy = Taxonomy.from_nodes([{k: v for k, v in n.items() if not k.startswith("_")} for n in nodes])
    except TaxonomyError as exc:
        raise field_problem(field, str(exc), detail=str(exc), title="Invalid taxonomy") from exc
    async with session.begin():
        created = await store_taxonomy(session, taxonomy, "api")
        row = await session.get(TaxonomyVersion, taxonomy.version)
    await sync.refresh()
    return taxonomy_public(taxonomy, row, created)


async def _active(session: SessionDep) -> Taxonomy:
    row = await session.scalar(select(TaxonomyVersion).where(TaxonomyVersion.active.is_(True)))
    if row is None:
        raise NotFound("Taxonomy", "active")
    taxonomy = taxonomy_from_row(row)
    await session.rollback()  # end the read transaction: the change opens its own
    return taxonomy


@router.post("/taxonomy/nodes", dependencies=needs("config:write"), response_model=TaxonomyPublic,
             summary="Add a node to the active taxonomy, or replace the node at that path (a new version)")
async def put_node(body: TaxonomyNodeIn, session: SessionDep, sync: SyncDep) -> TaxonomyPublic:
    nodes = [n for n in _as_nodes(await _active(session)) if n["path"] != body.path.strip().strip("/")]
    nodes.append(body.model_dump())
    return await _replace_active(session, sync, nodes, "body.path")


@router.delete("/taxonomy/nodes/{path:path}", dependencies=needs("config:write"),
               response_model=TaxonomyPublic, responses=problem_responses(404),
               summary="Remove a node (and its children) from the active taxonomy (a new version)")
async def delete_node(path: str, session: SessionDep, sync: SyncDep) -> TaxonomyPublic:
    taxonomy = await _active(session)
    try:
        taxonomy.get(path)
    except KeyError:
        raise NotFound("Taxonomy node", path) from None
    nodes = [n for n in _as_nodes(taxonomy) if n["path"] != path and not str(n["path"]).startswith(path + "/")]
    # A parent left without children would silently become a leaf: keep only explicit leaves' paths.
    leaves = [n for n in nodes if n["_leaf"]]
    kept_parents = {str(n["path"]).rsplit("/", 1)[0] for n in leaves if "/" in str(n["path"])}
    nodes = [n for n in nodes if n["_leaf"] or n["path"] in kept_parents
             or any(str(p).startswith(str(n["path"]) + "/") for p in kept_parents)]
    if not nodes:
        raise field_problem("path", "cannot remove the last node", detail="The taxonomy would be empty.",
                            title="Invalid taxonomy")
    return await _replace_active(session, sync, nodes, "path")
