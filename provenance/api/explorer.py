"""The lineage explorer's state and the graph it draws.

The state is all in the URL (``direction``, ``depth``, ``as_of``, ``aux``, ``group``, ``expand``), so a
view can be cited: the page's script changes the URL as the reader clicks and the server draws the
same picture from it. Expanding a node adds its neighbours (a version's readers and writers and what
they read and wrote; a run's footprint) to the graph around the subject; collapsing takes them away.
Everything comes from the service with the caller's principal: hidden things are placeholders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from provenance.access import Principal
from provenance.api.deps import as_of_ms
from provenance.errors import NotFoundError, QueryError
from provenance.events.model import ms_to_iso
from provenance.graph.answers import GraphEdge, GraphNode, LineageGraph
from provenance.graph.model import CREATED, DELETED, MODIFIED, NEVER, READ
from provenance.graph.queries import Limits
from provenance.service import Service

DIRECTIONS = ("both", "up", "down")
MAX_DEPTH, DEFAULT_DEPTH, MAX_EXPANDED = 20, 3, 20


@dataclass
class View:
    """One view of the explorer, as its URL says."""

    uri: str
    version: str | None = None
    direction: str = "both"
    depth: int = DEFAULT_DEPTH
    as_of: int = NEVER
    as_of_text: str | None = None
    aux: bool = False
    group: bool = False
    expand: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.uri}@{self.version}" if self.version else self.uri

    def params(self, **change: Any) -> dict[str, Any]:
        """The URL parameters of this view (with ``change``), defaults left out."""
        p: dict[str, Any] = {"uri": self.uri, "version": self.version, "direction": self.direction,
                             "depth": self.depth, "as_of": self.as_of_iso, "aux": "1" if self.aux else None,
                             "group": "1" if self.group else None, "expand": self.expand}
        p.update(change)
        if p["direction"] == "both":
            p["direction"] = None
        if p["depth"] == DEFAULT_DEPTH:
            p["depth"] = None
        return {k: v for k, v in p.items() if v not in (None, "", [])}

    def query(self, **change: Any) -> str:
        return urlencode(self.params(**change), doseq=True)

    @property
    def as_of_iso(self) -> str | None:
        return None if self.as_of == NEVER else ms_to_iso(self.as_of)


def parse_view(uri: str, version: str | None, direction: str, depth: str, as_of: str | None, aux: str, group: str,
               expand: list[str]) -> View:
    """The view a URL asks for. A bad direction, depth or time is said, not silently changed: a time that is
    not one is a 400; a depth outside 1–20 is shown at the nearest allowed one with a notice."""
    notices = []
    if direction not in DIRECTIONS:
        raise QueryError(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction[:20]!r}")
    text = depth.strip()
    if not text:
        d = DEFAULT_DEPTH
    elif not text.lstrip("-").isdigit():
        raise QueryError(f"depth must be a whole number from 1 to {MAX_DEPTH}, not {text[:20]!r}")
    else:
        d = int(text)
        if not 1 <= d <= MAX_DEPTH:
            clamped = min(max(d, 1), MAX_DEPTH)
            notices.append(f"Depth {d} is outside 1 to {MAX_DEPTH}: showing depth {clamped}.")
            d = clamped
    t = as_of_ms(as_of)
    if len(expand) > MAX_EXPANDED:
        notices.append(f"Only the first {MAX_EXPANDED} expanded nodes are shown.")
    return View(uri=uri, version=version or None, direction=direction, depth=d, as_of=t,
                as_of_text=as_of, aux=aux == "1", group=group == "1", expand=list(dict.fromkeys(expand))[:MAX_EXPANDED],
                notices=notices)


def lineage(svc: Service, who: Principal, view: View) -> LineageGraph:
    """The graph around the subject, with the neighbours of every expanded node added."""
    g = svc.lineage(who, view.ref, view.direction, view.depth, view.as_of)  # type: ignore[arg-type]
    if not view.expand:
        return g
    nodes = {n.id: n for n in g.nodes}
    edges = {(e.source, e.target, e.rel): e for e in g.edges}
    redacted = g.redacted
    for k, node_id in enumerate(view.expand, 1):
        base = nodes.get(node_id)
        if base is None or base.redacted:
            continue
        try:
            extra = _neighbours(svc, who, base, view.as_of)
        except NotFoundError:
            continue
        rename = {n.id: f"redacted:x{k}.{n.id.split(':', 1)[-1]}" for n in extra.nodes if n.redacted}
        for n in extra.nodes:
            nid = rename.get(n.id, n.id)
            if nid not in nodes:
                step = 1 if n.depth > 0 else -1 if n.depth < 0 else 0
                nodes[nid] = n.model_copy(update={"id": nid, "start": False, "depth": base.depth + step})
        for e in extra.edges:
            s, t = rename.get(e.source, e.source), rename.get(e.target, e.target)
            edges.setdefault((s, t, e.rel), e.model_copy(update={"source": s, "target": t}))
        redacted += extra.redacted
    return g.model_copy(update={"nodes": list(nodes.values()), "edges": list(edges.values()), "redacted": redacted})


def _neighbours(svc: Service, who: Principal, node: GraphNode, as_of: int) -> LineageGraph:
    """One step around a node: a version's lineage at depth 1, a run's footprint."""
    if node.kind == "artifact":
        ref = node.id.removeprefix("version:")
        return svc.lineage(who, ref, "both", 1, as_of)
    fp = svc.footprint(who, node.uri, as_of, Limits(limit=200))
    app = fp.app
    nodes = [GraphNode(id=node.id, kind="app", label=app.job or app.app_id, uri=app.app_id, type="app",
                       state=app.state, job=app.job, users=app.users, project=app.project,
                       created_ts=app.started_ts, depth=0)]
    edges = []
    for k, item in enumerate(fp.artifacts, 1):
        vid = f"version:{item.version_uri}" if not item.redacted else f"redacted:{k}"
        read = "INPUT" in item.types
        nodes.append(GraphNode(id=vid, kind="artifact", label=item.name or item.uri.rsplit("/", 1)[-1],
                               uri=item.uri, type=item.type, version=item.version, project=item.project,
                               redacted=item.redacted, created_ts=item.created_ts, depth=-1 if read else 1))
        if read:
            edges.append(GraphEdge(source=vid, target=node.id, rel=READ))
        # a temporary output (created and deleted by the run) is drawn as deleted
        for t, rel in (("OUTPUT_ADDED", CREATED), ("OUTPUT_MODIFIED", MODIFIED), ("OUTPUT_REMOVED", DELETED),
                       ("OUTPUT_TMP", DELETED)):
            if t in item.types:
                edges.append(GraphEdge(source=node.id, target=vid, rel=rel))
    return LineageGraph(start=[], direction="both", depth=1, nodes=nodes, edges=edges, redacted=fp.redacted)
