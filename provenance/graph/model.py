"""What the processor writes to a lineage store, and what the store gives back.

Node identity is encoded in the id (as Marquez does): ``user:alice``, ``app:<app id>``,
``job:<stage>``, ``artifact:<root uri>``, ``version:<root uri>@<key>``. Version keys are the
explicit version (path convention or table commit), ``~<app id>`` for the version an app wrote
without saying which, and ``~0`` for data that existed before anything was captured.

Facts (`FactBatch`) are commutative: nodes and edges merge by min/max time, properties, tags and
touches are sets. Lineage between apps and artifact versions (`DerivedLineage`) is a pure function
of an artifact's touches (`provenance.processor.versions`), recomputed when those change. Together
this makes any order and any duplication of one history produce the same graph.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# relations
RAN = "RAN"  # user -> app
INSTANCE_OF = "INSTANCE_OF"  # app -> job
READ = "READ"  # app -> version
CREATED = "CREATED"  # app -> version
MODIFIED = "MODIFIED"  # app -> version
DELETED = "DELETED"  # app -> version
VERSION_OF = "VERSION_OF"  # version -> artifact

WRITE_RELS = (CREATED, MODIFIED)
LINEAGE_RELS = (READ, CREATED, MODIFIED, DELETED)

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


def split_version_node(node_id: str) -> tuple[str, str]:
    """(artifact uri, version key) of a version node id."""
    body = node_id.removeprefix("version:")
    uri, _, key = body.rpartition("@")
    return uri, key


def node_kind(node_id: str) -> str:
    return node_id.split(":", 1)[0]


def node_key(node_id: str) -> str:
    return node_id.split(":", 1)[1]


@dataclass(frozen=True, slots=True)
class Touch:
    """An app's operation(s) of one kind on one file, first and last time (file-level footprint)."""

    app: str  # app id (not node id)
    uri: str  # file uri
    op: str  # create read write delete rename_from rename_to commit
    artifact: str  # artifact root uri
    version: str  # explicit version, or '' when the event did not say
    first_ts: int
    last_ts: int


@dataclass(frozen=True, slots=True)
class NodeFact:
    id: str
    kind: str
    ts: int


@dataclass(frozen=True, slots=True)
class PropFact:
    """A property value that holds from ``ts`` on; ``rank`` orders facts of the same instant."""

    node: str
    key: str
    ts: int
    value: Any
    rank: int = 0


@dataclass(frozen=True, slots=True)
class EdgeFact:
    src: str
    rel: str
    dst: str
    ts: int


@dataclass(frozen=True, slots=True)
class TagFact:
    """A tag set (value) or removed (value None) on an artifact at ``ts``."""

    node: str
    key: str
    ts: int
    value: str | None
    uri: str  # the file or object the tag was put on


@dataclass
class FactBatch:
    nodes: list[NodeFact] = field(default_factory=list)
    props: list[PropFact] = field(default_factory=list)
    edges: list[EdgeFact] = field(default_factory=list)
    touches: list[Touch] = field(default_factory=list)
    tags: list[TagFact] = field(default_factory=list)

    def extend(self, other: FactBatch) -> None:
        self.nodes.extend(other.nodes)
        self.props.extend(other.props)
        self.edges.extend(other.edges)
        self.touches.extend(other.touches)
        self.tags.extend(other.tags)

    def __len__(self) -> int:
        return len(self.nodes) + len(self.props) + len(self.edges) + len(self.touches) + len(self.tags)


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One version of an artifact: when it came to be and which app made it (None: never written)."""

    key: str
    created_ts: int
    creator: str | None
    label: str


@dataclass(frozen=True, slots=True)
class DerivedEdge:
    app: str  # app id
    rel: str
    version: str  # version key
    first_ts: int
    last_ts: int


@dataclass
class DerivedLineage:
    """Versions of one artifact and the app→version edges, as resolved from its touches."""

    artifact: str  # artifact root uri
    versions: list[VersionInfo]
    edges: list[DerivedEdge]


@dataclass(frozen=True, slots=True)
class Edge:
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
