"""Feedback category taxonomy: a two-level tree (type -> module) loaded from YAML."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

SEPARATOR = "/"


class TaxonomyError(ValueError):
    """The taxonomy file is malformed or violates a structural rule."""


@dataclass(frozen=True)
class TaxonomyNode:
    key: str  # full path key, e.g. "billing/payment_failure"; top level is just "billing"
    name: str
    description: str
    examples: tuple[str, ...]
    parent: str | None


@dataclass(frozen=True)
class Taxonomy:
    nodes: tuple[TaxonomyNode, ...]
    version: str  # content hash, so any edit to the file yields a new version
    _index: dict[str, TaxonomyNode] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Frozen dataclass: bypass __setattr__ to cache the key lookup table.
        object.__setattr__(self, "_index", {n.key: n for n in self.nodes})

    def leaves(self) -> list[TaxonomyNode]:
        parents = {n.parent for n in self.nodes if n.parent is not None}
        return [n for n in self.nodes if n.key not in parents]

    def top_level(self) -> list[TaxonomyNode]:
        return [n for n in self.nodes if n.parent is None]

    def get(self, key: str) -> TaxonomyNode:
        try:
            return self._index[key]
        except KeyError:
            raise KeyError(f"unknown taxonomy key: {key!r}") from None

    def path(self, key: str) -> list[TaxonomyNode]:
        """Nodes from the root down to `key` (inclusive)."""
        chain = [self.get(key)]
        while chain[-1].parent is not None:
            chain.append(self.get(chain[-1].parent))
        return chain[::-1]

    def to_dict(self) -> dict[str, Any]:
        """The file shape (`{"categories": [...]}`), from which `from_dict` rebuilds this taxonomy."""
        children: dict[str | None, list[TaxonomyNode]] = {}
        for node in self.nodes:
            children.setdefault(node.parent, []).append(node)

        def tree(node: TaxonomyNode) -> dict[str, Any]:
            item: dict[str, Any] = {"key": node.key.rsplit(SEPARATOR, 1)[-1], "name": node.name,
                                    "description": node.description, "examples": list(node.examples)}
            if node.key in children:
                item["children"] = [tree(child) for child in children[node.key]]
            return item

        return {"categories": [tree(node) for node in children.get(None, [])]}

    @classmethod
    def from_nodes(cls, nodes: list[dict[str, Any]]) -> Taxonomy:
        """Build a taxonomy from flat nodes `{"path": "billing/refund", "description", "examples"}`.

        Parents are implied by the paths. Leaves directly at the top (`"card_arrival"`) are allowed
        here, so a flat label set such as Banking77's can be used as it is; a missing description
        defaults to the humanised name.
        """
        tree: dict[str, Any] = {"categories": []}
        index: dict[str, dict[str, Any]] = {}
        for i, raw in enumerate(nodes):
            path = str(raw.get("path") or "").strip().strip(SEPARATOR)
            parts = [part.strip() for part in path.split(SEPARATOR)]
            if not path or not all(parts):
                raise TaxonomyError(f"nodes[{i}].path: must be a non-empty path such as 'billing/refund'")
            parent_list = tree["categories"]
            for depth, part in enumerate(parts):
                key = SEPARATOR.join(parts[: depth + 1])
                item = index.get(key)
                if item is None:
                    item = {"key": part, "name": _humanise(part), "description": "", "examples": []}
                    index[key] = item
                    parent_list.append(item)
                elif depth == len(parts) - 1 and item.get("_explicit"):
                    raise TaxonomyError(f"nodes[{i}].path: duplicate taxonomy path {key!r}")
                if depth < len(parts) - 1:
                    parent_list = item.setdefault("children", [])
            assert item is not None  # split gives at least one part, so the loop ran and set it
            item["_explicit"] = True
            if raw.get("name"):
                item["name"] = str(raw["name"]).strip()
            item["description"] = str(raw.get("description") or "").strip()
            examples = raw.get("examples") or []
            if not isinstance(examples, list) or not all(isinstance(e, str) for e in examples):
                raise TaxonomyError(f"nodes[{i}].examples: must be a list of strings")
            item["examples"] = examples
        for item in index.values():
            item.pop("_explicit", None)
            if not item["description"]:
                item["description"] = item["name"]
        return cls.from_dict(tree, require_two_levels=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any], require_two_levels: bool = True) -> Taxonomy:
        """Build and validate a taxonomy from the parsed YAML structure.

        Files must describe a two-level tree; taxonomies put over the API may have leaves at the
        top (`require_two_levels=False`).
        """
        if not isinstance(data, dict) or not isinstance(data.get("categories"), list):
            raise TaxonomyError("taxonomy must be a mapping with a 'categories' list")
        nodes: list[TaxonomyNode] = []
        _collect(data["categories"], parent=None, out=nodes, where="categories")
        seen: set[str] = set()
        for node in nodes:
            if node.key in seen:
                raise TaxonomyError(f"duplicate taxonomy key: {node.key!r}")
            seen.add(node.key)
        if require_two_levels and not any(n.parent is not None for n in nodes):
            raise TaxonomyError("taxonomy needs at least 2 levels (top-level types with children)")
        parents = {n.parent for n in nodes if n.parent is not None}
        for node in nodes:
            is_leaf = node.key not in parents
            if is_leaf and node.parent is None and require_two_levels:
                raise TaxonomyError(f"top-level category {node.key!r} has no children")
            if is_leaf and not node.description:
                raise TaxonomyError(f"leaf category {node.key!r} is missing a description")
        return cls(nodes=tuple(nodes), version=_content_hash(nodes))


def _collect(items: Any, parent: str | None, out: list[TaxonomyNode], where: str) -> None:
    if not isinstance(items, list) or not items:
        raise TaxonomyError(f"{where}: expected a non-empty list of categories")
    for i, item in enumerate(items):
        loc = f"{where}[{i}]"
        if not isinstance(item, dict):
            raise TaxonomyError(f"{loc}: expected a mapping, got {type(item).__name__}")
        raw_key = str(item.get("key") or "").strip()
        if not raw_key or SEPARATOR in raw_key:
            raise TaxonomyError(f"{loc}: 'key' must be a non-empty string without {SEPARATOR!r}")
        key = f"{parent}{SEPARATOR}{raw_key}" if parent else raw_key
        examples = item.get("examples") or []
        if not isinstance(examples, list) or not all(isinstance(e, str) for e in examples):
            raise TaxonomyError(f"{key}: 'examples' must be a list of strings")
        out.append(
            TaxonomyNode(
                key=key,
                name=str(item.get("name") or raw_key).strip(),
                description=str(item.get("description") or "").strip(),
                examples=tuple(e.strip() for e in examples if e.strip()),
                parent=parent,
            )
        )
        if "children" in item:
            _collect(item["children"], parent=key, out=out, where=f"{key}.children")


def _humanise(key: str) -> str:
    return key.replace("_", " ").replace("-", " ").strip().capitalize() or key


def _content_hash(nodes: list[TaxonomyNode]) -> str:
    canonical = [
        {
            "key": n.key,
            "name": n.name,
            "description": n.description,
            "examples": list(n.examples),
            "parent": n.parent,
        }
        for n in nodes
    ]
    blob = json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:12]


def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    """Load a taxonomy YAML file; None loads the packaged default."""
    if path is None:
        text = resources.files("classify").joinpath("data/taxonomy.yaml").read_text("utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return Taxonomy.from_dict(yaml.safe_load(text))
