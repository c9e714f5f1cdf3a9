"""Inference: one canonical event → the facts it establishes. Pure: no I/O, no state.

The lineage between apps and artifact versions is not decided here but by
`provenance.processor.versions` over all of an artifact's touches, which keeps the result
independent of the order events arrive in.
"""

from __future__ import annotations

from typing import Any

from provenance.errors import EventError
from provenance.events.model import APP_STATE_RANK, Event, Kind
from provenance.graph.model import (
    INSTANCE_OF,
    RAN,
    EdgeFact,
    FactBatch,
    NodeFact,
    PropFact,
    TagFact,
    Touch,
    app_node,
    artifact_node,
    job_node,
    user_node,
    version_node,
)
from provenance.processor.rules import ArtifactRef, Rules

#: App attributes kept as properties (everything else an app event carries is kept too, under attrs.*).
_TS_OF_STATE = {"submitted": "submitted_ts", "started": "started_ts", "finished": "ended_ts",
                "failed": "ended_ts", "killed": "ended_ts"}


def unattributed_app(user: str | None) -> str:
    """File changes no app claims are grouped per user (direct access, e.g. an upload)."""
    return f"~{user or 'unknown'}"


def infer(event: Event, rules: Rules) -> FactBatch:
    out = FactBatch()
    if event.kind is Kind.APP:
        _app(event, rules, out)
    elif event.kind is Kind.FILE:
        _file(event, rules, out)
    elif event.kind is Kind.TABLE_COMMIT:
        _commit(event, rules, out)
    elif event.kind is Kind.TAG:
        assert event.uri is not None
        ref = rules.classify(event.uri)
        _artifact(ref, event.ts, out)
        value = event.attrs.get("value")
        out.tags.append(TagFact(artifact_node(ref.uri), str(event.attrs["key"]), event.ts,
                                None if event.op == "remove" else _tag_value(value), event.uri))
    elif event.kind is Kind.LINK:
        assert event.uri is not None and event.dst is not None
        app = event.app_id or f"link:{event.event_id}"
        _who(app, event.user, event.ts, out)
        _touch(app, event.dst, "read", event, rules, out)
        _touch(app, event.uri, "write", event, rules, out)
    return out


def _tag_value(value: Any) -> str:
    if value is None or value is True:
        return "true"
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _who(app: str, user: str | None, ts: int, out: FactBatch) -> str:
    node = app_node(app)
    out.nodes.append(NodeFact(node, "app", ts))
    if user:
        out.nodes.append(NodeFact(user_node(user), "user", ts))
        out.edges.append(_edge(user_node(user), RAN, node, ts))
    return node


def _edge(src: str, rel: str, dst: str, ts: int) -> EdgeFact:
    return EdgeFact(src, rel, dst, ts)


def _app(event: Event, rules: Rules, out: FactBatch) -> None:
    assert event.app_id is not None
    node = _who(event.app_id, event.user, event.ts, out)
    ts = event.ts
    out.props.append(PropFact(node, "state", ts, event.op, APP_STATE_RANK[event.op]))
    out.props.append(PropFact(node, _TS_OF_STATE[event.op], ts, ts))
    if event.user:
        out.props.append(PropFact(node, "user", ts, event.user))
    for key, value in event.attrs.items():
        out.props.append(PropFact(node, key, ts, value))
    job = rules.jobs.job_name(event.attrs)
    if job:
        project = event.attrs.get("project")
        jid = job_node(f"{project}/{job}" if project else job)
        out.nodes.append(NodeFact(jid, "job", ts))
        out.props.append(PropFact(jid, "name", 0, job))
        if project:
            out.props.append(PropFact(jid, "project", 0, project))
        out.edges.append(_edge(node, INSTANCE_OF, jid, ts))


def _artifact(ref: ArtifactRef, ts: int, out: FactBatch) -> None:
    node = artifact_node(ref.uri)
    out.nodes.append(NodeFact(node, "artifact", ts))
    # static properties (a function of the path): one fact at ts 0, so repeats collapse
    out.props.append(PropFact(node, "type", 0, ref.type))
    out.props.append(PropFact(node, "name", 0, ref.name))
    out.props.append(PropFact(node, "rule", 0, ref.rule))
    if ref.project:
        out.props.append(PropFact(node, "project", 0, ref.project))
    for key, value in ref.props:
        out.props.append(PropFact(node, key, 0, value))


def _touch(app: str, uri: str, op: str, event: Event, rules: Rules, out: FactBatch,
           version: str | None = None) -> ArtifactRef | None:
    if rules.ignored(uri):
        return None
    ref = rules.classify(uri)
    _artifact(ref, event.ts, out)
    v = version or ref.version or _attr_version(event.attrs)
    out.touches.append(Touch(app, uri, op, ref.uri, v or "", event.ts, event.ts))
    return ref


def _attr_version(attrs: dict[str, Any]) -> str | None:
    v = attrs.get("version")
    return None if v is None or isinstance(v, bool) else str(v)


def _file(event: Event, rules: Rules, out: FactBatch) -> None:
    assert event.uri is not None
    app = event.app_id or unattributed_app(event.user)
    _who(app, event.user, event.ts, out)
    op = event.op
    if op == "rename":
        assert event.dst is not None
        _touch(app, event.uri, "rename_from", event, rules, out)
        _touch(app, event.dst, "rename_to", event, rules, out)
    elif op in ("xattr_set", "xattr_remove"):
        name = str(event.attrs["name"])
        if not name.startswith(rules.xattr_prefix) or rules.ignored(event.uri):
            return
        ref = rules.classify(event.uri)
        _artifact(ref, event.ts, out)
        value = None if op == "xattr_remove" else _tag_value(event.attrs.get("value"))
        out.tags.append(TagFact(artifact_node(ref.uri), name[len(rules.xattr_prefix):], event.ts, value,
                                event.uri))
    else:
        _touch(app, event.uri, op, event, rules, out)


def _commit(event: Event, rules: Rules, out: FactBatch) -> None:
    assert event.uri is not None
    attrs = event.attrs
    version = _attr_version(attrs)
    if version is None:
        raise EventError("a table_commit event needs attrs.version")
    info = attrs.get("commit_info") if isinstance(attrs.get("commit_info"), dict) else {}
    app = event.app_id or info.get("prov.app_id") or unattributed_app(event.user or info.get("prov.user"))
    _who(str(app), event.user or info.get("prov.user"), event.ts, out)
    ref = _touch(str(app), event.uri, "commit", event, rules, out, version=version)
    if ref is None:
        return
    vnode = version_node(ref.uri, version)
    for key in ("operation", "added", "removed", "num_files", "num_rows"):
        if key in attrs:
            out.props.append(PropFact(vnode, key, event.ts, attrs[key]))
