"""The taxonomy: read the active one and its versions; replace it, add or remove a node, or activate an
earlier version (classify.taxonomy_versions), then refresh the engine."""


from classify import taxonomy_versions
from classify.api.deps import SyncDep
from classify.models import TaxonomyVersion
from classify.registry import taxonomy_from_row
from classify.schemas.taxonomy import (
    TaxonomyIn,
    TaxonomyNodeIn,
    TaxonomyNodePublic,
    TaxonomyPublic,
    TaxonomyVersionSummary,
)
from classify.taxonomy import Taxonomy
from closedloop.api import SessionDep, api_router, get_or_404
from closedloop.auth import needs
from closedloop.errors import problem_responses

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


def _public(stored: taxonomy_versions.StoredTaxonomy) -> TaxonomyPublic:
    return taxonomy_public(stored.taxonomy, stored.row, stored.created)


@router.get("/taxonomy", dependencies=needs("feedback:read"),
            response_model=TaxonomyPublic, summary="The active taxonomy")
async def get_taxonomy(session: SessionDep) -> TaxonomyPublic:
    row = await taxonomy_versions.active_row(session)
    return taxonomy_public(taxonomy_from_row(row), row)


@router.put("/taxonomy", dependencies=needs("config:write"), response_model=TaxonomyPublic,
            summary="Replace the active taxonomy (a new version; past classifications keep theirs)",
            description="Send flat `nodes` with paths such as `billing/refund` (parents are implied), or the "
                        "file shape `categories` (the tree of `taxonomy.yaml`, as JSON). Answers the version; "
                        "the same content again answers the same version (`created: false`).")
async def put_taxonomy(body: TaxonomyIn, session: SessionDep, sync: SyncDep) -> TaxonomyPublic:
    field = "body.nodes" if body.nodes is not None else "body.categories"
    nodes = [node.model_dump() for node in body.nodes] if body.nodes is not None else None
    stored = await taxonomy_versions.replace(session, taxonomy_versions.build(nodes, body.categories, field))
    await sync.refresh()
    return _public(stored)


@router.get("/taxonomy/versions", dependencies=needs("feedback:read"), response_model=list[TaxonomyVersionSummary],
            summary="Every taxonomy version, newest first")
async def list_versions(session: SessionDep) -> list[TaxonomyVersionSummary]:
    rows = await taxonomy_versions.all_versions(session)
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
    stored = await taxonomy_versions.activate(session, version)
    await sync.refresh()
    return _public(stored)


@router.post("/taxonomy/nodes", dependencies=needs("config:write"), response_model=TaxonomyPublic,
             summary="Add a node to the active taxonomy, or replace the node at that path (a new version)")
async def put_node(body: TaxonomyNodeIn, session: SessionDep, sync: SyncDep) -> TaxonomyPublic:
    stored = await taxonomy_versions.put_node(session, body.model_dump())
    await sync.refresh()
    return _public(stored)


@router.delete("/taxonomy/nodes/{path:path}", dependencies=needs("config:write"),
               response_model=TaxonomyPublic, responses=problem_responses(404),
               summary="Remove a node (and its children) from the active taxonomy (a new version)")
async def delete_node(path: str, session: SessionDep, sync: SyncDep) -> TaxonomyPublic:
    stored = await taxonomy_versions.remove_node(session, path)
    await sync.refresh()
    return _public(stored)
