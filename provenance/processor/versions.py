"""Version resolution: which version of an artifact each touch created or read. Pure functions.

- A touch that names a version (path convention, ``delta://…@N``, a table commit) is of that version.
- An unversioned write by app A is of the version A committed explicitly on that artifact if it
  did (a Delta writer's part files belong to its commit), else of A's own version ``~A``: a write
  after a read makes a new version, born at A's first write.
- An unversioned read (or delete) at time t is of the newest version born at or before t; if none,
  of ``~0``, the data as it was before capture. A flow (a process, a move) reading back what it wrote
  itself is not an input of itself, so that read draws no READ edge; nor is a run's read that names no
  flow of what the run wrote. Another process of the same run reading it is a step of the pipeline
  (``cp a tmp; gzip -c tmp > a.gz``; a temporary file moved into place), so that read is an edge.

Everything here depends only on the set of touches, never on their arrival order.
"""

from __future__ import annotations

import bisect
from collections import defaultdict

from provenance.graph.model import (
    CREATED,
    DELETED,
    INITIAL_VERSION,
    MODIFIED,
    READ,
    DerivedEdge,
    DerivedLineage,
    Touch,
    VersionInfo,
)

WRITE_OPS = frozenset({"create", "write", "rename_to", "commit"})
READ_LIKE_OPS = frozenset({"read", "delete", "rename_from"})


def _rels(op: str, created: bool) -> tuple[str, ...]:
    if op == "read":
        return (READ,)
    if op == "delete":
        return (DELETED,)
    if op == "rename_from":  # the content moved on: the mover read it, and it is gone here
        return (READ, DELETED)
    if op in ("create", "rename_to"):
        return (CREATED,)
    if op == "commit":
        return (CREATED,)
    return (CREATED,) if created else (MODIFIED,)


def _own_read(flow: str, wrote: set[str]) -> bool:
    """A read by the writing run is of its own output when the same flow wrote it, or when the read names
    no flow (only the run is known), or when only the run is known of the write."""
    return not flow or flow in wrote or wrote <= {""}


def _vkey_sort(key: str) -> tuple[int, str]:
    digits = key.lstrip("v")
    return (int(digits), key) if digits.isdigit() else (2**62, key)


def resolve_artifact(artifact: str, touches: list[Touch]) -> DerivedLineage:
    return _one_writer(artifact, touches) or _resolve(artifact, touches)


#: what an unversioned read-like touch draws to the version it finds
_READ_LIKE_RELS = {"read": (READ,), "delete": (DELETED,), "rename_from": (READ, DELETED)}


def _one_writer(artifact: str, touches: list[Touch]) -> DerivedLineage | None:
    """`_resolve` in one pass for the commonest artifacts: written by one app only, and read, deleted
    or moved away by any, no touch naming a version or committing (a new output, with the stage that
    reads it, a temporary file). None for any other artifact."""
    writer: str | None = None
    born = 0
    created = False
    flows: set[str] = set()  # the writer's flows that wrote it
    for t in touches:
        if t.version or t.op == "commit":
            return None
        if t.op in WRITE_OPS:
            if writer is None:
                writer, born = t.app, t.first_ts
            elif t.app != writer:
                return None
            else:
                born = min(born, t.first_ts)
            created = created or t.op in ("create", "rename_to")
            flows.add(t.flow)
    if writer is None:
        return None
    key = "~" + writer
    write_rel = CREATED if created else MODIFIED  # a version its writer created is CREATED, not also MODIFIED
    edges: dict[tuple[str, str, str, str], tuple[int, int]] = {}
    initial: int | None = None
    rels: tuple[str, ...]
    for t in touches:
        if t.op in WRITE_OPS:
            found, rels = key, (write_rel,)
        elif t.first_ts >= born:
            own = t.app == writer and _own_read(t.flow, flows)
            if own and t.op == "read":
                continue  # reading back its own output
            found, rels = key, _READ_LIKE_RELS[t.op]
        else:
            found, rels = INITIAL_VERSION, _READ_LIKE_RELS[t.op]
            initial = t.first_ts if initial is None else min(initial, t.first_ts)
        for rel in rels:
            if rel == READ and found == key and t.app == writer and _own_read(t.flow, flows):
                continue
            k = (t.app, t.flow, rel, found)
            cur = edges.get(k)
            edges[k] = (t.first_ts, t.last_ts) if cur is None else (min(cur[0], t.first_ts), max(cur[1], t.last_ts))
    versions = [VersionInfo(key, born, writer, "v1")]
    if initial is not None:  # read before anything was written here: the data as it was before capture
        versions.insert(0, VersionInfo(INITIAL_VERSION, initial, None, "initial"))
    return DerivedLineage(artifact, versions,
                          [DerivedEdge(a, r, k, f, la, fl) for (a, fl, r, k), (f, la) in sorted(edges.items())])


def _resolve(artifact: str, touches: list[Touch]) -> DerivedLineage:
    explicit_writes: dict[str, list[tuple[int, str]]] = defaultdict(list)  # app -> [(ts, version)]
    born: dict[str, tuple[int, str | None]] = {}  # version -> (ts, creator)

    def bear(key: str, ts: int, creator: str | None) -> None:
        cur = born.get(key)
        if cur is None or (ts, creator or "") < (cur[0], cur[1] or ""):
            born[key] = (ts, creator)

    for t in touches:
        if t.op in WRITE_OPS and t.version:
            explicit_writes[t.app].append((t.first_ts, t.version))
            bear(t.version, t.first_ts, t.app)
    write_version: dict[str, str] = {}
    for t in touches:
        if t.op in WRITE_OPS and not t.version:
            if t.app in explicit_writes:
                write_version[t.app] = max(explicit_writes[t.app])[1]
            else:
                key = "~" + t.app
                write_version[t.app] = key
                bear(key, t.first_ts, t.app)
    wrote: dict[str, set[str]] = defaultdict(set)  # version -> the flows of its creator that wrote it
    for t in touches:
        if t.op in WRITE_OPS:
            wrote[t.version or write_version[t.app]].add(t.flow)
    timeline = sorted((ts, key, creator) for key, (ts, creator) in born.items())
    times = [ts for ts, _, _ in timeline]

    edges: dict[tuple[str, str, str, str], tuple[int, int]] = {}  # (app, flow, rel, version key)

    def add(app: str, flow: str, rel: str, key: str, first: int, last: int) -> None:
        k = (app, flow, rel, key)
        cur = edges.get(k)
        edges[k] = (first, last) if cur is None else (min(cur[0], first), max(cur[1], last))

    created_by = {(t.app, t.version or write_version.get(t.app, ""))
                  for t in touches if t.op in ("create", "rename_to")}
    # A table commit makes a new version of a table that exists: CREATED only for its first version.
    first_born = timeline[0][1] if timeline else None
    commit_rel = {(t.app, t.version): CREATED if t.version == first_born else MODIFIED
                  for t in touches if t.op == "commit"}
    read_only: dict[str, int] = {}
    for t in touches:
        if t.version:
            key = t.version
            if t.op not in WRITE_OPS and key not in born:
                read_only[key] = min(read_only.get(key, t.first_ts), t.first_ts)
        elif t.op in WRITE_OPS:
            key = write_version[t.app]
        else:
            i = bisect.bisect_right(times, t.first_ts) - 1
            if i >= 0:
                key = timeline[i][1]
                if timeline[i][2] == t.app and t.op == "read" and _own_read(t.flow, wrote[key]):
                    continue  # reading back its own output
            else:
                key = INITIAL_VERSION
                read_only[key] = min(read_only.get(key, t.first_ts), t.first_ts)
        rels = _rels(t.op, (t.app, key) in created_by)
        if (t.app, key) in commit_rel and t.op in WRITE_OPS:
            rels = (commit_rel[(t.app, key)],)
        for rel in rels:
            if rel == READ and born.get(key, (0, None))[1] == t.app and _own_read(t.flow, wrote[key]):
                continue
            add(t.app, t.flow, rel, key, t.first_ts, t.last_ts)
    # a version its writer created is CREATED, not also MODIFIED (in any flow of that writer)
    created = {(app, key) for (app, _, rel, key) in edges if rel == CREATED}
    for (app, flow, _, key) in [k for k in edges if k[2] == MODIFIED and (k[0], k[3]) in created]:
        first, last = edges.pop((app, flow, MODIFIED, key))
        c = edges.get((app, flow, CREATED, key))
        edges[(app, flow, CREATED, key)] = (first, last) if c is None else (min(c[0], first), max(c[1], last))

    found = [(ts, key, creator) for ts, key, creator in timeline]
    found += [(ts, key, None) for key, ts in read_only.items() if key not in born]
    found.sort(key=lambda v: (v[0], _vkey_sort(v[1])))
    versions = []
    implicit_n = 0
    for ts, key, creator in found:
        if key == INITIAL_VERSION:
            label = "initial"
        elif key.startswith(("~", "#")):  # written without naming a version, or known by its content
            implicit_n += 1
            label = f"v{implicit_n}"
        else:
            label = key
        versions.append(VersionInfo(key, ts, creator, label))
    return DerivedLineage(
        artifact,
        versions,
        [DerivedEdge(a, r, k, f, la, fl) for (a, fl, r, k), (f, la) in sorted(edges.items())],
    )


def resolve_new_reads(
    artifact: str, versions: list[VersionInfo], merged: list[Touch],
    stored: dict[tuple[str, str, str, str, str], Touch],
) -> DerivedLineage | None:
    """Lineage added by unversioned reads of an artifact whose versions they cannot change.

    ``versions`` is the artifact's stored resolution, ``merged`` the batch's reads merged with what
    was stored for the same keys, ``stored`` those stored touches. Answers exactly what
    `resolve_artifact` would add, or None when a merged read now resolves to another version than
    before (then the caller re-resolves the whole artifact).
    """
    timeline = sorted((v.created_ts, v.key, v.creator) for v in versions if v.creator is not None)
    times = [ts for ts, _, _ in timeline]

    def at(ts: int) -> tuple[int, str, str | None] | None:
        i = bisect.bisect_right(times, ts) - 1
        return timeline[i] if i >= 0 else None

    edges: dict[tuple[str, str, str], tuple[int, int]] = {}  # (app, flow, version key)
    initial: int | None = None
    for t in merged:
        hit = at(t.first_ts)
        before = stored.get(t.key)
        if before is not None and at(before.first_ts) != hit:
            return None
        if hit is None:
            key = INITIAL_VERSION
            initial = t.first_ts if initial is None else min(initial, t.first_ts)
        elif hit[2] == t.app:
            if t.flow:
                return None  # another process of the writer may be reading it: which flows wrote it is not here
            continue  # reading back its own output
        else:
            key = hit[1]
        cur = edges.get((t.app, t.flow, key))
        edges[(t.app, t.flow, key)] = ((t.first_ts, t.last_ts) if cur is None
                                       else (min(cur[0], t.first_ts), max(cur[1], t.last_ts)))
    new_versions = [] if initial is None else [VersionInfo(INITIAL_VERSION, initial, None, "initial")]
    return DerivedLineage(artifact, new_versions,
                          [DerivedEdge(a, READ, k, f, la, fl) for (a, fl, k), (f, la) in sorted(edges.items())])
