"""Inference: one canonical event → the facts it establishes. Pure: no I/O, no state.

Facts are added to a `FactBatch`, which merges them as they come. The lineage between apps and
artifact versions is not decided here but by `provenance.processor.versions` over all of an
artifact's touches, which keeps the result independent of the order events arrive in.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from functools import lru_cache
from typing import Any

from provenance.errors import EventError
from provenance.events.model import APP_STATE_RANK, Event, Kind
from provenance.graph.model import (
    FEEDS,
    INHERITS,
    INSTANCE_OF,
    MAY_FEED,
    PARENT,
    PART_OF,
    RAN,
    FactBatch,
    app_node,
    artifact_node,
    encode_value,
    flow_node,
    job_node,
    user_node,
    version_node,
)
from provenance.processor.rules import ArtifactRef, Rules

_TS_OF_STATE = {"submitted": "submitted_ts", "started": "started_ts", "finished": "ended_ts",
                "failed": "ended_ts", "killed": "ended_ts"}


def unattributed_app(user: str | None) -> str:
    """File changes no app claims are grouped per user (direct access, e.g. an upload)."""
    return f"~{user or 'unknown'}"


def infer(event: Event, rules: Rules, out: FactBatch | None = None) -> FactBatch:
    """Add the facts ``event`` establishes to ``out`` (a new batch if None) and return it."""
    out = FactBatch() if out is None else out
    kind = event.kind
    if kind is Kind.FILE:
        _file(event, rules, out)
    elif kind is Kind.APP:
        _app(event, rules, out)
    elif kind is Kind.TABLE_COMMIT:
        _commit(event, rules, out)
    elif kind is Kind.TAG:
        assert event.uri is not None
        ref = rules.classify(event.uri)
        _artifact(ref, event.ts, out)
        value = None if event.op == "remove" else _tag_value(event.attrs.get("value"))
        out.tag(artifact_node(ref.uri), str(event.attrs["key"]), event.ts, value, event.uri)
    elif kind is Kind.LINK:
        assert event.uri is not None and event.dst is not None
        app = event.app_id or f"link:{event.event_id or event.content_id()}"  # normalizers may leave it empty
        _who(app, event.user, event.ts, out)
        flow = _declared(app, event.ts, out)  # a link is a statement of the source: uri was made from dst
        _touch(app, event.dst, "read", event, rules, out, flow=flow)
        _touch(app, event.uri, "write", event, rules, out, flow=flow)
    elif kind is Kind.DESCRIBE:
        _describe(event, rules, out)
    return out


#: sources whose inputs and outputs are what the source states, not what was seen happen
DECLARING_SOURCES = frozenset({"openlineage"})


def _declared(app: str, ts: int, out: FactBatch) -> str:
    return _flow(app, "d", ts, out)


def _flow(app: str, flow: str, ts: int, out: FactBatch) -> str:
    node = flow_node(app, flow)
    out.node(node, "flow", ts)
    out.edge(node, PART_OF, app_node(app), ts)
    return flow


def flow_of(event: Event) -> str:
    """The flow an event's file access happened in: the process, when the capture saw processes (fanotify, or
    an event of the run's own instrumentation that a fanotify capture vouches for: ``attrs.tier: "process"``);
    what a source declared; '' when only the run is known (the audit hook's one Python process is the
    run: which of its inputs reached which output it cannot tell)."""
    attrs = event.attrs
    if attrs.get("tier") == "declared" or event.source in DECLARING_SOURCES:
        return "d"
    proc = attrs.get("proc")
    if (event.source == "fanotify" or attrs.get("tier") == "process") and isinstance(proc, str) and proc:
        return "p:" + proc
    return ""


def _int(value: Any) -> int | None:
    return value if type(value) is int and value >= 0 else None


def _times(event: Event) -> tuple[int, int]:
    """(first, last) of an access: a read from when it was opened, a write until it ended. A write whose end
    the capture did not see (the audit hook) ended when the file was last modified, as its fingerprint
    taken after the run says."""
    ts = event.ts
    attrs = event.attrs
    opened = _int(attrs.get("opened_ts"))
    first = opened if opened is not None and opened <= ts else ts
    last = ts
    if attrs.get("ends_unknown") and isinstance(fp := attrs.get("fingerprint"), dict):
        mtime = _int(fp.get("mtime_ns"))
        if mtime is not None:
            last = max(ts, mtime // 1_000_000)
    return first, last


def _tag_value(value: Any) -> str:
    if value is None or value is True:
        return "true"
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _who(app: str, user: str | None, ts: int, out: FactBatch) -> str:
    node = app_node(app)
    out.node(node, "app", ts)
    if user:
        unode = user_node(user)
        out.node(unode, "user", ts)
        out.edge(unode, RAN, node, ts)
    return node


def _app(event: Event, rules: Rules, out: FactBatch) -> None:
    assert event.app_id is not None
    node = _who(event.app_id, event.user, event.ts, out)
    ts = event.ts
    out.prop(node, "state", ts, event.op, APP_STATE_RANK[event.op])
    known = {_TS_OF_STATE[event.op]: str(ts)}  # encode_value of an int
    if event.user:
        known["user"] = encode_value(event.user)
    out.encoded_props(node, ts, 0, known)
    out.encoded_props(node, ts, 0, {key: encode_value(value) for key, value in event.attrs.items()})
    _instance_of(node, event.attrs, rules, ts, out)
    records = event.attrs.get("processes")
    if isinstance(records, list):
        _processes(event.app_id, records, ts, out)


def _job(attrs: dict[str, Any], rules: Rules, ts: int, out: FactBatch) -> str | None:
    """The job (pipeline stage) that ``attrs`` name (``name``, ``project``), or None."""
    job = rules.jobs.job_name(attrs)
    if not job:
        return None
    project = attrs.get("project")
    jid = job_node(f"{project}/{job}" if project else job)
    out.node(jid, "job", ts)
    out.prop(jid, "name", 0, job)
    if project:
        out.prop(jid, "project", 0, project)
    return jid


def _instance_of(app: str, attrs: dict[str, Any], rules: Rules, ts: int, out: FactBatch) -> None:
    jid = _job(attrs, rules, ts, out)
    if jid:
        out.edge(app, INSTANCE_OF, jid, ts)


def _describe(event: Event, rules: Rules, out: FactBatch) -> None:
    """Properties a source stated about an app, a job or an artifact (or one of its versions), as of the
    event's time; for an app also the job it is a run of (``attrs.job``) and the run that started it
    (``attrs.parent``: its ``app_id``, ``project`` and ``job``), which becomes a PARENT edge."""
    attrs, ts = event.attrs, event.ts
    props = {key: encode_value(value) for key, value in (attrs.get("props") or {}).items()}
    if event.op == "app":
        assert event.app_id is not None
        node = _who(event.app_id, event.user, ts, out)
        out.encoded_props(node, ts, 0, props)
        job = attrs.get("job")
        if isinstance(job, dict):
            _instance_of(node, job, rules, ts, out)
        parent = attrs.get("parent")
        if isinstance(parent, dict) and isinstance(parent.get("app_id"), str) and parent["app_id"].strip():
            pnode = _who(parent["app_id"].strip(), None, ts, out)  # a placeholder until its own events come
            if parent.get("project"):  # the project its own events will state: hidden as it will be then
                out.prop(pnode, "project", ts, parent["project"])
            if isinstance(parent.get("job"), dict):
                _instance_of(pnode, parent["job"], rules, ts, out)
            out.edge(node, PARENT, pnode, ts)
    elif event.op == "job":
        jid = _job(attrs, rules, ts, out)
        if jid:
            out.encoded_props(jid, ts, 0, props)
    else:
        assert event.uri is not None
        ref = rules.lookup(event.uri)
        if ref is None:
            return
        _artifact(ref, ts, out)
        version = ref.version or _attr_version(attrs)
        out.encoded_props(version_node(ref.uri, version) if version else artifact_node(ref.uri), ts, 0, props)


PROCESS_RECORDS = 5_000
SHARED_LIMIT = 64


def _processes(app: str, records: list[Any], ts: int, out: FactBatch) -> None:
    """The processes the capture saw (an app's end event): a flow each, with its program. A process that wrote
    a pipe another read feeds it (``FEEDS``, exact). A process that started another may have handed it data in
    memory or arguments (``INHERITS``, possible). A pipe a process wrote that no other process of the run read
    feeds its parent when the parent held its read end as the process started (``FEEDS``:
    ``subprocess.run(..., capture_output=True)``, a shell's ``$(cmd)``); else, unless the parent wrote it
    itself (an output they share), it may have (``MAY_FEED``, possible).

    The other way round, a pipe a process read that no process of the run was seen writing, and that none of its
    ancestors was handed (so it came from outside the run), was written by its parent, which made it after its
    own program started: ``Popen(stdin=PIPE).communicate(data)``, ``tar czf`` writing into the gzip it started.
    The parent writes it exactly (``FEEDS`` to every process that read it) when the capture found it the
    writer (``pipes_from_parent``: it held the write end as the process started its program, or it and every
    other process it started ran a program of their own), else it may have (``MAY_FEED`` to the process: a
    copy of it that ran no program may be the writer): what the parent read before the process ended may be in
    what the process wrote."""
    flows: dict[str, tuple[int, int, set[int]]] = {}
    back: dict[str, set[int]] = {}
    ins: dict[str, set[int]] = {}
    fed: dict[str, set[int]] = {}
    parents: dict[str, str] = {}
    writers: dict[int, list[str]] = {}
    readers: dict[int, list[str]] = {}
    for r in records[:PROCESS_RECORDS]:
        if not isinstance(r, dict) or not isinstance(proc := r.get("proc"), str) or not proc or len(proc) > 64:
            continue
        flow = "p:" + proc
        node = flow_node(app, _flow(app, flow, ts, out))
        start = _int(r.get("start_ts")) or ts
        end = max(_int(r.get("end_ts")) or ts, start)
        described = {k: encode_value(r[k]) for k in ("exe", "argv", "pid", "start_ts", "end_ts")
                     if r.get(k) is not None}
        if described:
            out.encoded_props(node, 0, 0, described)
        outs = {i for i in r.get("pipes_out") or () if type(i) is int}
        flows[flow] = (start, end, outs)
        back[flow] = {i for i in r.get("pipes_to_parent") or () if type(i) is int}
        fed[flow] = {i for i in r.get("pipes_from_parent") or () if type(i) is int}
        ins[flow] = {i for i in r.get("pipes_in") or () if type(i) is int}
        for inode in outs:
            writers.setdefault(inode, []).append(flow)
        for inode in ins[flow]:
            readers.setdefault(inode, []).append(flow)
        parent = r.get("ppid_proc")
        if isinstance(parent, str) and parent and len(parent) <= 64:
            parents[flow] = "p:" + parent
    # pipes no process was seen writing that a parent made for its child: the parent writes them
    made: dict[int, set[str]] = {}
    for flow, parent in parents.items():
        if parent in flows:
            for inode in (fed[flow] & ins[flow]) - writers.keys():
                made.setdefault(inode, set()).add(parent)
    for inode, parent_flows in made.items():
        writers[inode] = sorted(parent_flows)
    for flow, parent in parents.items():
        start, end, outs = flows[flow]
        pnode = flow_node(app, _flow(app, parent, ts, out))
        out.edge(pnode, INHERITS, flow_node(app, flow), start)
        _, parent_end, parent_outs = flows.get(parent, (start, ts, set()))
        unread = [i for i in outs if i not in readers]
        for rel, found in ((FEEDS, any(i in back[flow] for i in unread)),
                           (MAY_FEED, any(i not in back[flow] and i not in parent_outs for i in unread))):
            if found:
                out.edge(flow_node(app, flow), rel, pnode, start)
                out.edge(flow_node(app, flow), rel, pnode, max(parent_end, start))
        if ins[flow] - writers.keys() - _handed_above(flow, parents, flows, ins):
            # (from its start until it ended, the parent may write into it what it has read)
            out.edge(pnode, MAY_FEED, flow_node(app, flow), start)
            out.edge(pnode, MAY_FEED, flow_node(app, flow), max(end, start))
    for inode, wrote in writers.items():
        for src in wrote:
            for dst in readers.get(inode, ()):
                if src != dst and src in flows:
                    (s1, e1, _), (s2, e2, _) = flows[src], flows[dst]
                    out.edge(flow_node(app, src), FEEDS, flow_node(app, dst), min(s1, s2))
                    out.edge(flow_node(app, src), FEEDS, flow_node(app, dst), max(e1, e2))


def _handed_above(flow: str, parents: dict[str, str], flows: dict[str, tuple[int, int, set[int]]],
                  ins: dict[str, set[int]]) -> set[int]:
    """The pipes the ancestors of ``flow`` held when they started their programs (the run's stdin, a pipe the
    shell was given): a pipe they passed down, not one the parent made."""
    out: set[int] = set()
    seen = {flow}
    current = parents.get(flow)
    while current is not None and current not in seen:
        seen.add(current)
        out |= ins.get(current, set()) | flows.get(current, (0, 0, set()))[2]
        current = parents.get(current)
    return out


def _artifact(ref: ArtifactRef, ts: int, out: FactBatch) -> None:
    node, static = _static(ref)
    out.node(node, "artifact", ts)
    out.encoded_props(node, 0, 0, static)


@lru_cache(maxsize=65536)
def _static(ref: ArtifactRef) -> tuple[str, dict[str, str]]:
    """The artifact's node id and the properties that follow from its path alone (facts at ts 0)."""
    node = artifact_node(ref.uri)
    pairs = [("type", ref.type), ("name", ref.name), ("rule", ref.rule)]
    if ref.project:
        pairs.append(("project", ref.project))
    pairs.extend(ref.props)
    return node, {k: encode_value(v) for k, v in pairs}


def _touch(app: str, uri: str, op: str, event: Event, rules: Rules, out: FactBatch,
           version: str | None = None, flow: str = "") -> ArtifactRef | None:
    ref = rules.lookup(uri)
    if ref is None:
        return None
    if op == "commit" and ref.type == "file":  # a commit proves a table, where no naming rule said more
        ref = replace(ref, type="table", rule="table-commit")
    ts = event.ts
    _artifact(ref, ts, out)
    v = version or ref.version or _attr_version(event.attrs)
    digest = _hash(event.attrs) if op in HASHED_OPS else None
    if digest is not None:
        out.content(digest, uri, app, op, ref.uri, ts)
        if not v and ref.uri == uri:  # a file that is its own artifact: its bytes name its version
            v = "#" + digest.rpartition(":")[2][:16]
    first, last = _times(event) if event.kind is Kind.FILE else (ts, ts)
    out.touch(app, uri, op, ref.uri, v or "", first, last, flow)
    return ref


#: the ops whose event says what the file held (a rename: the target, after the move)
HASHED_OPS = frozenset({"read", "write", "create", "rename_to"})


def _hash(attrs: dict[str, Any]) -> str | None:
    value = attrs.get("hash") if attrs else None
    return value if isinstance(value, str) and ":" in value and len(value) <= 200 else None


def _attr_version(attrs: dict[str, Any]) -> str | None:
    v = attrs.get("version") if attrs else None
    return None if v is None or isinstance(v, bool) else str(v)


def _file(event: Event, rules: Rules, out: FactBatch) -> None:
    assert event.uri is not None
    app = event.app_id or unattributed_app(event.user)
    _who(app, event.user, event.ts, out)
    op = event.op
    if op == "rename":
        assert event.dst is not None
        # a move is exact: what arrives at dst is what left uri, nothing else; its own flow says so
        flow = _flow(app, "mv:" + _short(f"{event.uri}\x00{event.dst}"), event.ts, out)
        _touch(app, event.uri, "rename_from", event, rules, out, flow=flow)
        _touch(app, event.dst, "rename_to", event, rules, out, flow=flow)
    elif op in ("xattr_set", "xattr_remove"):
        name = str(event.attrs["name"])
        ref = rules.lookup(event.uri)
        if not name.startswith(rules.xattr_prefix) or ref is None:
            return
        _artifact(ref, event.ts, out)
        value = None if op == "xattr_remove" else _tag_value(event.attrs.get("value"))
        out.tag(artifact_node(ref.uri), name[len(rules.xattr_prefix):], event.ts, value, event.uri)
    else:
        flow = flow_of(event)
        # (a create too: the shell's create of `> out` is cmd's, as its writes are)
        shared = event.attrs.get("shared_with") if flow.startswith("p:") and op in ("read", "write", "create") \
            else None
        sharers = [p for p in shared[:SHARED_LIMIT] if isinstance(p, str) and p and len(p) <= 64] \
            if isinstance(shared, list) else []
        if not (sharers and event.attrs.get("handed_on") is True):  # (the shell that opened `> out` for cmd)
            if flow:
                _flow(app, flow, event.ts, out)
            _touch(app, event.uri, op, event, rules, out, flow=flow)
        for proc in sharers:  # the processes that used the file through a descriptor they were handed
            _touch(app, event.uri, op, event, rules, out, flow=_flow(app, "p:" + proc, event.ts, out))


def _short(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def _commit(event: Event, rules: Rules, out: FactBatch) -> None:
    assert event.uri is not None
    attrs = event.attrs
    version = _attr_version(attrs)
    if version is None:
        raise EventError("a table_commit event needs attrs.version")
    raw_info = attrs.get("commit_info")
    info: dict[str, Any] = raw_info if isinstance(raw_info, dict) else {}
    app = event.app_id or info.get("prov.app_id") or unattributed_app(event.user or info.get("prov.user"))
    _who(str(app), event.user or info.get("prov.user"), event.ts, out)
    flow = flow_of(event)
    if flow:
        _flow(str(app), flow, event.ts, out)
    ref = _touch(str(app), event.uri, "commit", event, rules, out, version=version, flow=flow)
    if ref is None:
        return
    vnode = version_node(ref.uri, version)
    for key in ("operation", "added", "removed", "num_files", "num_rows"):
        if key in attrs:
            out.prop(vnode, key, event.ts, attrs[key])
