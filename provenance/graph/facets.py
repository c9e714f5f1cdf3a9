"""What sources stated about datasets, read back: OpenLineage identities, facets and column lineage.

An artifact's OpenLineage identity is the namespace and name a producer sent for it (kept on the
artifact when the dataset is the artifact itself, not a file inside one), else one derived from its
URI as the OpenLineage naming spec does: ``file`` and the path for local files, ``scheme://host`` and
the rest for others. Facets are properties (``facet:<scope>:<name>``, `provenance.graph.model`) of the
artifact or of the version the producer named; a reader takes the artifact's and lays the version's
over them. Stored facets are data a producer sent: every reader treats them as untrusted values of any
JSON type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

from provenance.connectors.openlineage import NAME_KEY, NAMESPACE_KEY, dataset_uri
from provenance.events.model import normalize_uri
from provenance.graph.answers import ColumnField, ColumnInput, ColumnLineage
from provenance.graph.model import NEVER, Node, artifact_node, facets_of, version_node
from provenance.graph.queries import LineageQueries, _iso_or_none


def dataset_id(uri: str, props: dict[str, Any]) -> tuple[str, str]:
    """(namespace, name) of the artifact ``uri`` with properties ``props``, as OpenLineage names it."""
    ns, name = props.get(NAMESPACE_KEY), props.get(NAME_KEY)
    if isinstance(ns, str) and isinstance(name, str) and uri_of(ns, name) == uri:
        return ns, name
    return derived_id(uri)


def derived_id(uri: str) -> tuple[str, str]:
    """The OpenLineage naming of a URI nobody named: ``file`` + path, else ``scheme://host`` + the rest."""
    parts = urlsplit(uri)
    if parts.scheme == "file":
        return "file", unquote(parts.path)
    name = unquote(parts.path.lstrip("/")) + (f"?{parts.query}" if parts.query else "")
    return (f"{parts.scheme}://{parts.netloc}" if parts.netloc else parts.scheme), name


def uri_of(namespace: str, name: str) -> str | None:
    """The normal URI of a dataset named by OpenLineage (None when the names make no URI)."""
    try:
        return normalize_uri(dataset_uri(namespace, name))
    except ValueError:
        return None


def version_name(key: str, vnode: Node | None) -> str:
    """A version as its producer named it (its OpenLineage ``version`` facet), else as this graph labels it."""
    stated = _dict(_dict(facets_of(vnode.props, "dataset") if vnode else {}).get("version")).get("datasetVersion")
    if isinstance(stated, str):
        return stated
    return str(vnode.label) if vnode is not None and vnode.label else key


def stated_facets(props: dict[str, Any]) -> dict[str, Any]:
    """Every facet among a node's properties, by property key (deleted ones left out)."""
    return {k: v for k, v in props.items() if k.startswith("facet:") and v is not None}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def dataset_facets(q: LineageQueries, uri: str, version: str | None = None, as_of: int = NEVER) -> dict[str, Any]:
    """The dataset facets of an artifact with those of one of its versions (by key; None: the newest) laid
    over them, by name."""
    if version is None:
        versions = q.store.versions([uri], as_of)[uri]
        version = versions[-1].key if versions else None
    ids = [artifact_node(uri)] + ([version_node(uri, version)] if version else [])
    nodes = q.store.nodes(ids, as_of)
    out: dict[str, Any] = {}
    for i in ids:
        if i in nodes:
            out.update(facets_of(nodes[i].props, "dataset"))
    return out


def column_lineage(q: LineageQueries, uri: str, version: str | None, as_of: int = NEVER) -> ColumnLineage:
    """The column lineage of an artifact (or of one version of it); the caller has checked it may see it."""
    versions = q.store.versions([uri], as_of)[uri]
    keys = [v.key for v in versions if version is None or v.key == version or v.label == version]
    nodes = q.store.nodes([artifact_node(uri), *(version_node(uri, k) for k in keys)], as_of)
    facet: Any = None
    found: str | None = None
    for key in reversed(keys):  # the newest version that has one, else the artifact's own
        vnode = nodes.get(version_node(uri, key))
        facet = facets_of(vnode.props, "dataset").get("columnLineage") if vnode else None
        if isinstance(facet, dict):
            found = key
            break
    anode = nodes.get(artifact_node(uri))
    if not isinstance(facet, dict) and version is None and anode is not None:
        facet = facets_of(anode.props, "dataset").get("columnLineage")
    ns, name = dataset_id(uri, anode.props if anode else {})
    label = version_name(found, nodes.get(version_node(uri, found))) if found else None
    answer = ColumnLineage(as_of=_iso_or_none(as_of), uri=uri, namespace=ns, name=name, version=label)
    if not isinstance(facet, dict):
        return answer
    fields = _dict(facet.get("fields"))
    raw_inputs = [f for spec in fields.values() for f in _list(_dict(spec).get("inputFields"))]
    whole = _list(facet.get("dataset"))
    inputs = _inputs(q, [*raw_inputs, *whole], as_of)
    out_fields = []
    for field_name, spec in sorted(fields.items()):
        if not isinstance(spec, dict):
            continue
        listed = _list(spec.get("inputFields"))
        out_fields.append(ColumnField(
            name=field_name, inputs=[inputs[id(f)] for f in listed if id(f) in inputs],
            transformation_description=_text(spec.get("transformationDescription")),
            transformation_type=_text(spec.get("transformationType"))))
    whole_inputs = [inputs[id(f)] for f in whole if id(f) in inputs]
    return answer.model_copy(update={"fields": out_fields, "dataset": whole_inputs})


def _inputs(q: LineageQueries, raw: list[Any], as_of: int) -> dict[int, ColumnInput]:
    """Each well-formed input field (by the identity of its dict), with the project of its dataset."""
    parsed: dict[int, tuple[str, str, str, str, list[dict[str, Any]]]] = {}
    for f in raw:
        if not isinstance(f, dict):
            continue
        ns, name, field = _text(f.get("namespace")), _text(f.get("name")), _text(f.get("field"))
        uri = uri_of(ns, name) if ns and name else None
        if uri is None or field is None:
            continue
        root = q.rules.classify(uri).uri
        ts = f.get("transformations")
        parsed[id(f)] = (root, ns or "", name or "", field, [t for t in ts if isinstance(t, dict)]
                         if isinstance(ts, list) else [])
    projects = q.artifact_projects({p[0] for p in parsed.values()}, as_of)
    return {k: ColumnInput(uri=root, namespace=ns, name=name, field=field, transformations=ts,
                           project=projects.get(root))
            for k, (root, ns, name, field, ts) in parsed.items()}


# -- facets that name other datasets, as a caller may see them ------------------------------------
_REFERRING = ("columnLineage", "lineage", "symlinks")  # the facets that name other datasets (or their other names)


def _name_of(key: str) -> str:
    """A facet's name, from its name or its property key (``facet:<scope>:<name>``)."""
    return key.split(":", 2)[2] if key.startswith("facet:") and key.count(":") >= 2 else key


def _sources(facet: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The source entries a referring facet holds (input fields, lineage inputs, job lineage entries)."""
    if name == "columnLineage":
        return [*(f for spec in _dict(facet.get("fields")).values() for f in _list(_dict(spec).get("inputFields"))),
                *_list(facet.get("dataset"))]
    if name == "symlinks":
        return [i for i in _list(facet.get("identifiers")) if isinstance(i, dict)]
    entries = [facet, *_list(facet.get("entries"))]
    return [*(e for e in entries[1:]), *(i for e in entries for i in _list(_dict(e).get("inputs"))),
            *(i for e in entries for spec in _dict(_dict(e).get("fields")).values()
              for i in _list(_dict(spec).get("inputs")))]


def named_datasets(facets: dict[str, Any]) -> set[tuple[str, str]]:
    """The datasets (namespace, name) that the facets (by name or property key) name."""
    out = set()
    for key, facet in facets.items():
        name = _name_of(key)
        if name in _REFERRING and isinstance(facet, dict):
            for s in _sources(facet, name):
                ns, n = _dict(s).get("namespace"), _dict(s).get("name")
                if isinstance(ns, str) and isinstance(n, str):
                    out.add((ns, n))
    return out


def hidden_datasets(q: LineageQueries, named: set[tuple[str, str]], sees: Callable[[str | None], bool],
                    as_of: int = NEVER) -> set[tuple[str, str]]:
    """Those of ``named`` the caller may not see (by the project of the artifact each names)."""
    roots = {pair: q.rules.classify(uri).uri for pair in named if (uri := uri_of(*pair)) is not None}
    projects = q.artifact_projects(set(roots.values()), as_of)
    return {pair for pair, root in roots.items() if not sees(projects.get(root))}


def without_hidden(facets: dict[str, Any], hidden: set[tuple[str, str]]) -> dict[str, Any]:
    """The facets with every part that names a hidden dataset left out (copies; the rest as they are)."""
    if not hidden:
        return facets

    def shown(entry: Any) -> bool:
        e = _dict(entry)
        return (e.get("namespace"), e.get("name")) not in hidden

    def keep(items: Any) -> Any:
        return [i for i in items if shown(i)] if isinstance(items, list) else items

    out = dict(facets)
    for key, facet in facets.items():
        name = _name_of(key)
        if name not in _REFERRING or not isinstance(facet, dict):
            continue
        f = dict(facet)
        if name == "columnLineage":
            f["fields"] = {k: {**spec, "inputFields": keep(spec.get("inputFields"))} if isinstance(spec, dict) else spec
                           for k, spec in _dict(facet.get("fields")).items()}
            if "dataset" in facet:
                f["dataset"] = keep(facet["dataset"])
        elif name == "symlinks":
            if "identifiers" in facet:
                f["identifiers"] = keep(facet["identifiers"])
        else:
            f = _lineage_without(f, keep)
            if isinstance(facet.get("entries"), list):
                f["entries"] = [_lineage_without(dict(e), keep) for e in facet["entries"]
                                if isinstance(e, dict) and shown(e)]
        out[key] = f
    return out


def _lineage_without(entry: dict[str, Any], keep: Callable[[Any], Any]) -> dict[str, Any]:
    if "inputs" in entry:
        entry["inputs"] = keep(entry["inputs"])
    if isinstance(entry.get("fields"), dict):
        entry["fields"] = {k: {**v, "inputs": keep(v.get("inputs"))} if isinstance(v, dict) else v
                           for k, v in entry["fields"].items()}
    return entry
