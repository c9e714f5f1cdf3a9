"""What the processor writes to a lineage store, and what the store gives back.

Node identity is encoded in the id (as Marquez does): ``user:alice``, ``app:<app id>``,
``job:<stage>``, ``artifact:<root uri>``, ``version:<root uri>@<key>``, ``flow:<app id>#<flow>``.
Version keys are the explicit version (path convention or table commit), ``#<hash>`` for a file
whose content was hashed (the same bytes are the same version, whoever wrote or read them),
``~<app id>`` for the version an app wrote without saying which, and ``~0`` for data that existed
before anything was captured.

A *flow* is a part of a run that data passes through as a unit, finer than the run: one process
(``p:<proc key>``, when the capture saw each process), one rename (``mv:<…>``: the bytes moved, nothing
else), or what a source declared (``d``). A touch names its flow (``""``: only the run is known). The
run's edges to versions are the footprint; its flows' edges say which input reached which output.

Facts (`FactBatch`) are commutative: nodes and edges merge by min/max time, properties, tags and
touches are sets. Lineage between apps and artifact versions (`DerivedLineage`) is a pure function
of an artifact's touches (`provenance.processor.versions`), recomputed when those change. Together
this makes any order and any duplication of one history produce the same graph.
"""

from __future__ import annotations

import marshal
import pickle
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

# relations
RAN = "RAN"  # user -> app
INSTANCE_OF = "INSTANCE_OF"  # app -> job
READ = "READ"  # app -> version
CREATED = "CREATED"  # app -> version
MODIFIED = "MODIFIED"  # app -> version
DELETED = "DELETED"  # app -> version
VERSION_OF = "VERSION_OF"  # version -> artifact
PART_OF = "PART_OF"  # flow -> app
FEEDS = "FEEDS"  # flow -> flow: a process wrote a pipe another read (data passed, exactly)
INHERITS = "INHERITS"  # flow -> flow: a process started another (it may have passed data in memory or argv)
# flow -> flow: a process wrote a pipe no process of the run read: its parent may have; or a process read a pipe
# no process of the run was seen writing: its parent may have written it
MAY_FEED = "MAY_FEED"
PARENT = "PARENT"  # app -> app: a run started by another one (an OpenLineage parent facet)

WRITE_RELS = (CREATED, MODIFIED)
LINEAGE_RELS = (READ, CREATED, MODIFIED, DELETED)  # app -> version

#: Facets a source stated (OpenLineage) are properties of the node they describe, one per facet, so that
#: facets of later events add to earlier ones and each answers as of any time: ``facet:<scope>:<name>``
#: with scope run (an app), job, dataset, input or output (an artifact or one of its versions).
FACET_SCOPES = ("run", "job", "dataset", "input", "output")


def facet_key(scope: str, name: str) -> str:
    return f"facet:{scope}:{name}"


def facets_of(props: dict[str, Any], scope: str) -> dict[str, Any]:
    """The facets of one scope among a node's properties, by name (a facet deleted later is absent)."""
    prefix = f"facet:{scope}:"
    return {k[len(prefix):]: v for k, v in props.items() if k.startswith(prefix) and v is not None}


INITIAL_VERSION = "~0"
NEVER = 2**62  # "as of the end of time"


def user_node(name: str) -> str:
    return f"user:{name}"


def app_node(app_id: str) -> str:
    return f"app:{app_id}"


def job_node(name: str) -> str:
    return f"job:{name}"


def artifact_node(uri: str) -> str:
    return f"artifact:{uri}"


def version_node(artifact_uri: str, key: str) -> str:
    return f"version:{artifact_uri}@{key}"


def flow_node(app_id: str, flow: str) -> str:
    return f"flow:{app_id}#{flow}"


def split_flow_node(node_id: str) -> tuple[str, str]:
    """(app id, flow) of a flow node id."""
    app, _, flow = node_id.removeprefix("flow:").rpartition("#")
    return app, flow


def split_version_node(node_id: str) -> tuple[str, str]:
    """(artifact uri, version key) of a version node id."""
    body = node_id.removeprefix("version:")
    uri, _, key = body.rpartition("@")
    return uri, key


def node_key(node_id: str) -> str:
    return node_id.split(":", 1)[1]


class Touch(NamedTuple):
    """An app's operation(s) of one kind on one file, first and last time (file-level footprint).

    For a read, ``first_ts`` is when it was first opened; for a write, ``last_ts`` is when the writing
    ended, as far as the capture knows: the times that order inputs before outputs."""

    app: str  # app id (not node id)
    uri: str  # file uri
    op: str  # create read write delete rename_from rename_to commit
    artifact: str  # artifact root uri
    version: str  # explicit version, or '' when the event did not say
    first_ts: int
    last_ts: int
    flow: str = ""  # the part of the run it happened in ('' : the run)

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return self.app, self.uri, self.op, self.version, self.flow


def encode_value(value: Any) -> str:
    """The one JSON encoding of property values (stable, so equal values are equal facts)."""
    if type(value) is str and value.isalnum():
        return '"' + value + '"'
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str).decode()


class FactBatch:
    """Facts of a batch, merged as they are added: what a store writes in one go.

    Plain dicts and tuples, so a batch built in a worker process pickles cheaply. Merging is the
    same min/max / set union the store applies, so two batches merged equal the two applied.

    - nodes:   id → [kind, first_ts, last_ts]
    - edges:   (src, rel, dst) → [first_ts, last_ts]
    - touches: (app, uri, op, version, flow) → [artifact, first_ts, last_ts]
    - contents: (hash, uri, app, op) → [artifact, first_ts]: a file's bytes as an app read or wrote them
    - props:   (node, ts, rank) → {key: encoded value}: values that hold from ts on, grouped by the
               instant they were set at (an app's attributes of one event, an artifact's path-derived
               properties), so a store can keep a group as one row
    - clashes: {(node, key, ts, rank, encoded value)}: a second value for a key already in its group
               (two events at one instant that disagree); both are facts, a read picks one as it always does
    - tags:    {(node, key, ts, removed, value, uri)}: a tag set (removed 0) or removed (1) at ts
    """

    __slots__ = ("clashes", "contents", "edges", "nodes", "props", "tags", "touches")

    def __init__(self) -> None:
        self.nodes: dict[str, list[Any]] = {}
        self.edges: dict[tuple[str, str, str], list[int]] = {}
        self.touches: dict[tuple[str, str, str, str, str], list[Any]] = {}
        self.contents: dict[tuple[str, str, str, str], list[Any]] = {}
        self.props: dict[tuple[str, int, int], dict[str, str]] = {}
        self.clashes: set[tuple[str, str, int, int, str]] = set()
        self.tags: set[tuple[str, str, int, int, str, str]] = set()

    def node(self, node_id: str, kind: str, ts: int) -> None:
        cur = self.nodes.get(node_id)
        if cur is None:
            self.nodes[node_id] = [kind, ts, ts]
        elif ts < cur[1]:
            cur[1] = ts
        elif ts > cur[2]:
            cur[2] = ts

    def edge(self, src: str, rel: str, dst: str, ts: int) -> None:
        key = (src, rel, dst)
        cur = self.edges.get(key)
        if cur is None:
            self.edges[key] = [ts, ts]
        elif ts < cur[0]:
            cur[0] = ts
        elif ts > cur[1]:
            cur[1] = ts

    def touch(self, app: str, uri: str, op: str, artifact: str, version: str, first: int, last: int,
              flow: str = "") -> None:
        key = (app, uri, op, version, flow)
        cur = self.touches.get(key)
        if cur is None:
            self.touches[key] = [artifact, first, last]
        else:
            cur[1] = min(cur[1], first)
            cur[2] = max(cur[2], last)

    def content(self, hash_: str, uri: str, app: str, op: str, artifact: str, ts: int) -> None:
        key = (hash_, uri, app, op)
        cur = self.contents.get(key)
        if cur is None:
            self.contents[key] = [artifact, ts]
        elif ts < cur[1]:
            cur[1] = ts

    def prop(self, node: str, key: str, ts: int, value: Any, rank: int = 0) -> None:
        self.encoded_props(node, ts, rank, {key: encode_value(value)})

    def encoded_props(self, node: str, ts: int, rank: int, values: dict[str, str]) -> None:
        """Add properties whose values are already encoded (`encode_value`); ``values`` is not kept."""
        group = self.props.get((node, ts, rank))
        if group is None:
            self.props[(node, ts, rank)] = dict(values)
            return
        for key, enc in values.items():
            old = group.setdefault(key, enc)
            if old != enc:
                self.clashes.add((node, key, ts, rank, enc))

    def prop_facts(self) -> Iterator[tuple[str, str, int, int, str]]:
        """Every property fact as (node, key, ts, rank, encoded value), for stores that keep one per row."""
        for (node, ts, rank), group in self.props.items():
            for key, enc in group.items():
                yield node, key, ts, rank, enc
        yield from self.clashes

    def tag(self, node: str, key: str, ts: int, value: str | None, uri: str) -> None:
        self.tags.add((node, key, ts, int(value is None), value or "", uri))

    def extend(self, other: FactBatch) -> None:
        for node_id, (kind, first, last) in other.nodes.items():
            self.node(node_id, kind, first)
            self.node(node_id, kind, last)
        for (src, rel, dst), (first, last) in other.edges.items():
            self.edge(src, rel, dst, first)
            self.edge(src, rel, dst, last)
        for (app, uri, op, version, flow), (artifact, first, last) in other.touches.items():
            self.touch(app, uri, op, artifact, version, first, last, flow)
        for (hash_, uri, app, op), (artifact, ts) in other.contents.items():
            self.content(hash_, uri, app, op, artifact, ts)
        for (node, ts, rank), group in other.props.items():
            self.encoded_props(node, ts, rank, group)
        self.clashes |= other.clashes
        self.tags |= other.tags

    def to_bytes(self) -> bytes:
        """The batch for another process running this interpreter (a worker's answer to the processor).

        `marshal` writes these plain containers in half the time `pickle` takes and reads them faster;
        a value of a type it does not write (a str subclass, say, from a connector's normalizer) sends
        the batch by pickle instead.
        """
        parts = (self.nodes, self.edges, self.touches, self.contents, self.props, self.clashes, self.tags)
        try:
            return b"M" + marshal.dumps(parts)
        except ValueError:
            return b"P" + pickle.dumps(parts, pickle.HIGHEST_PROTOCOL)

    @classmethod
    def from_bytes(cls, data: bytes) -> FactBatch:
        body = memoryview(data)[1:]
        batch = cls.__new__(cls)
        (batch.nodes, batch.edges, batch.touches, batch.contents, batch.props, batch.clashes,
         batch.tags) = marshal.loads(body) if data[:1] == b"M" else pickle.loads(body)
        return batch

    def __len__(self) -> int:
        return (len(self.nodes) + len(self.edges) + len(self.touches) + len(self.contents)
                + sum(map(len, self.props.values()))
                + len(self.clashes) + len(self.tags))


class Content(NamedTuple):
    """A file's bytes (``hash``) as an app read or wrote them, and the artifact the file belongs to."""

    hash: str
    uri: str
    app: str
    op: str
    artifact: str
    ts: int


class VersionInfo(NamedTuple):
    """One version of an artifact: when it came to be and which app made it (None: never written)."""

    key: str
    created_ts: int
    creator: str | None
    label: str


class DerivedEdge(NamedTuple):
    app: str  # app id
    rel: str
    version: str  # version key
    first_ts: int
    last_ts: int
    flow: str = ""  # the flow of the app it happened in ('': the run only)


@dataclass
class DerivedLineage:
    """Versions of one artifact and the app→version edges, as resolved from its touches."""

    artifact: str  # artifact root uri
    versions: list[VersionInfo]
    edges: list[DerivedEdge]


class Edge(NamedTuple):
    src: str
    rel: str
    dst: str
    first_ts: int
    last_ts: int


@dataclass
class Node:
    id: str
    kind: str
    first_ts: int
    last_ts: int
    label: str | None = None
    props: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
