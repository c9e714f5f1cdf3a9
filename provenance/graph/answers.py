"""The typed answers of the queries: what the CLI prints, the API returns and the pages and reports show.

Everything in an answer that names a node of the graph (an artifact version, an app, a step of an
evidence path, a file) is a `Visible`: it carries the project it belongs to, so one rule can hide it
(`provenance.access.redact`) wherever it appears, without knowing the answer's shape. Nothing that
names a node is a bare string outside a `Visible`; summaries (the users of an audit, its code
versions) are recomputed from what stays visible (`Answer.after_redaction`).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from typing import Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field

#: how a lineage edge is known, strongest first (DESIGN.md, "How each lineage edge is known")
Tier = Literal["declared", "process", "content", "run"]

REDACTED = "redacted"


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Visible(Model):
    """A thing of one project. Hidden from who may not see the project: `placeholder` keeps only the
    fields in ``KEEP`` (the shape of the lineage) and empties every other one (`hidden_copy`)."""

    KEEP: ClassVar[frozenset[str]] = frozenset({"depth", "kind", "types", "rel", "tier", "redacted"})

    project: str | None = None
    redacted: bool = False

    def hidden_copy(self) -> Self:
        values: dict[str, Any] = {}
        for name, info in type(self).model_fields.items():
            if name in self.KEEP:
                values[name] = getattr(self, name)
            else:
                values[name] = _blank(info.annotation, getattr(self, name))
        values["redacted"] = True
        values["project"] = None
        return type(self).model_construct(**values)

    def secrets(self) -> set[str]:
        """The identifiers of this thing (a hidden thing's are scrubbed everywhere else too). Not its short
        names: a visible job may be called what a hidden one is."""
        out = set()
        for key in ("uri", "app_id", "artifact", "version_uri"):
            value = getattr(self, key, None)
            if isinstance(value, str) and value and value != REDACTED:
                out.add(value)
        return out


def _blank(annotation: Any, value: Any) -> Any:
    """The empty value of a field of this type: None where allowed, else an empty container or text."""
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        return None
    if origin is Literal:
        return value  # a closed set of words names nothing
    target = origin or annotation
    if target is str:
        return REDACTED
    if target in (list, tuple):
        return []
    if target is dict:
        return {}
    if target is bool:
        return False
    if target in (int, float):
        return 0
    if isinstance(value, Visible):
        return value.hidden_copy()
    return None


# -- the pieces -------------------------------------------------------------------------------------
class AppRef(Visible):
    """A run named from elsewhere: the creator of a version, a reader, the app an ancestor came through."""

    app_id: str
    job: str | None = None


class ParentRef(AppRef):
    """The run that started a run, with the ``parent`` facet that said so (hidden with it)."""

    facet: dict[str, Any] | None = Field(default=None, description="the OpenLineage parent facet as it was sent")


class ArtifactRef(Visible):
    """An artifact (or one of its versions) named from elsewhere: where a propagated tag came from."""

    uri: str
    version: str | None = None


class AppInfo(Visible):
    """A run as the launcher (or another source) described it."""

    app_id: str
    uri: str = Field(description="app:<app id>")
    job: str | None = None
    users: list[str] = []
    state: str = "unknown"
    placeholder: bool = Field(default=False, description="known only from its files' events, no app event yet")
    command: list[str] | str | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None
    env_hash: str | None = None
    python: str | None = None
    host: str | None = None
    exit_code: int | None = None
    started_ts: int | None = None
    ended_ts: int | None = None
    props: dict[str, Any] = Field(default={}, description="everything its source said of it, OpenLineage run facets "
                                  "as facet:run:<name> (but the parent's, in parent)")
    parent: ParentRef | None = Field(default=None, description="the run that started this one (OpenLineage parent); "
                                     "its facet is here, not in props, so that it is hidden with it")

    def ref(self) -> AppRef:
        return AppRef(app_id=self.app_id, job=self.job, project=self.project)


class RankedApp(AppInfo):
    depth: int = 0
    certain: bool = Field(default=True, description="reached through exact flows only (see tier)")


class VersionItem(Visible):
    """One version of an artifact."""

    uri: str
    version: str
    version_key: str
    version_uri: str
    type: str
    name: str | None = None
    tags: dict[str, str] = {}
    created_ts: int | None = None
    created_by: AppRef | None = None
    outside: bool = Field(default=False, description="no captured run wrote this version: it was first seen "
                          "being read, with content no earlier version had (made or changed outside any "
                          "captured run)")


class FootprintItem(VersionItem):
    types: list[str]
    first_ts: int
    last_ts: int


class ImpactItem(FootprintItem):
    reached: bool
    depth: int | None = None
    tier: Tier | None = Field(default=None, description="how it is known to be affected (reached items)")
    certain: bool | None = None


class AncestorItem(VersionItem):
    depth: int
    via: list[AppRef] = []
    tier: Tier = Field(default="run", description="how it is known to be an ancestor: process, declared, "
                       "content (certain) or run (possible: an over-approximation)")
    certain: bool = False


class TargetItem(VersionItem):
    inherited_tags: dict[str, list[ArtifactRef]] = {}


class ConsumerApp(AppInfo):
    outputs: list[VersionItem] = []
    through: ArtifactRef | None = Field(default=None, description="the copy of the target it read (the same "
                                        "bytes at another path), when not the target itself")


class FileTouch(Visible):
    """A file an app touched, with its Hopsworks footprint types."""

    uri: str
    artifact: str
    types: list[str]
    first_ts: int
    last_ts: int


class EvidenceStep(Visible):
    """One step of an evidence path: an artifact version, or the run (and its process) that read or wrote it."""

    kind: Literal["app", "artifact"]
    uri: str
    rel: str | None = None
    app_id: str | None = None
    job: str | None = None
    users: list[str] = []
    version: str | None = None
    type: str | None = None
    process: str | None = Field(default=None, description="the process of the run the data went through, when "
                                "the capture saw processes: its command line (or program) and pid; or a move, "
                                "or a source's statement")
    flow: str | None = Field(default=None, description="the flow's key in the run (p:<proc>, mv:<id>, d)")
    tier: Tier | None = None


class GdprItem(VersionItem):
    depth: int
    deleted: bool
    inherited_tags: dict[str, list[ArtifactRef]] = {}
    tier: Tier = Field(default="run", description="process, declared, content: certain to hold the data; run: "
                       "possibly (a run read it with other inputs, and which reached this output is not known)")
    certain: bool = False


class GdprModel(GdprItem):
    deployed: bool = Field(description="deployed now (as of the answer's time): a current version of a deployment "
                           "holds it")
    current: bool = Field(default=True, description="the newest version of its artifact then")
    superseded_ts: int | None = Field(default=None, description="when a newer version replaced it")
    evidence: list[EvidenceStep] = []


class StartRef(Visible):
    """Where an impact query started: an app, a job's runs, or an artifact version."""

    kind: Literal["app", "artifact"]
    uri: str


# -- the answers ------------------------------------------------------------------------------------
class Answer(Model):
    """What every answer carries: the time it is as of, and how many things in it were hidden."""

    as_of: str | None = Field(default=None, description="the time the answer is as of (ISO-8601), null for now")
    redacted: int = Field(default=0, description="things replaced by placeholders because the caller may not see them")

    def hide(self, sees: Callable[[str | None], bool]) -> int:
        """Hide what needs more than placeholders (`LineageGraph`: ids that edges refer to); returns how
        many things it hid. The generic walk of `provenance.access.redact` does the rest."""
        return 0

    def after_redaction(self) -> None:
        """Recompute what summarizes hidden things (only ever called when something was hidden)."""


class Paged(Answer):
    offset: int = 0
    limit: int = 1000
    totals: dict[str, int] = {}
    partial: bool = False
    reason: str | None = None


class Footprint(Paged):
    query: Literal["footprint"] = "footprint"
    app: AppInfo
    artifacts: list[FootprintItem]
    files: list[FileTouch]


class Impact(Paged):
    query: Literal["impact"] = "impact"
    start: list[StartRef]
    apps: list[RankedApp]
    artifacts: list[ImpactItem]


class Upstream(Paged):
    query: Literal["upstream"] = "upstream"
    target: TargetItem
    artifacts: list[AncestorItem]
    apps: list[RankedApp]
    users: list[str]
    code_versions: list[str]
    environments: list[str]
    consumers: list[ConsumerApp]

    def after_redaction(self) -> None:
        apps = [a for a in self.apps if not a.redacted]
        self.users = sorted({u for a in apps for u in a.users})
        self.code_versions = sorted({a.git_commit for a in apps if a.git_commit})
        self.environments = sorted({a.env_hash for a in apps if a.env_hash})


class Gdpr(Paged):
    query: Literal["gdpr"] = "gdpr"
    data: list[VersionItem]
    copies: list[GdprItem] = Field(default=[], description="where the data's content came from, and the other "
                                   "copies of it: they hold the same data")
    models: list[GdprModel]
    apps: list[RankedApp]
    users: list[str]
    derived: list[GdprItem]
    logs: list[VersionItem] = Field(default=[], description="logs of the runs that used the data: they may hold it")

    def after_redaction(self) -> None:
        self.users = sorted({u for a in self.apps if not a.redacted for u in a.users})


class InputVersions(Visible):
    uri: str
    versions: list[str]


class InputChange(Visible):
    uri: str
    a: list[str]
    b: list[str]


class ReadsDiff(Model):
    same: list[InputVersions] = []
    changed: list[InputChange] = []
    only_a: list[InputVersions] = []
    only_b: list[InputVersions] = []

    @property
    def differ(self) -> bool:
        return bool(self.changed or self.only_a or self.only_b)


class GitDiff(Model):
    a: str | None
    b: str | None
    a_dirty: bool | None
    b_dirty: bool | None


class CodeDiff(Model):
    git: GitDiff
    command: dict[str, list[str] | str | None]
    files: ReadsDiff
    same: bool


class PackageChange(Model):
    name: str
    a: str
    b: str


class PackagesDiff(Model):
    added: list[str] = []
    removed: list[str] = []
    changed: list[PackageChange] = []


class EnvironmentDiff(Model):
    a: str | None
    b: str | None
    python: dict[str, str | None]
    packages: PackagesDiff
    same: bool


class Sameness(Model):
    inputs: bool
    code: bool
    environment: bool


class Comparison(Answer):
    """Two runs compared: the reproducibility check."""

    query: Literal["compare", "repro"] = Field(default="compare", description="compare: two runs; repro: a run "
                                               "against what was captured since")
    a: AppInfo
    b: AppInfo
    inputs: ReadsDiff
    code: CodeDiff
    environment: EnvironmentDiff
    same: Sameness
    reproducible: bool
    warnings: list[str]


class SearchHit(Visible):
    id: str
    kind: str
    name: str
    uri: str
    type: str
    users: list[str] = []
    tags: dict[str, str] = {}
    description: str = ""
    job: str | None = None
    state: str | None = None
    created_ts: int = 0
    last_ts: int = 0
    usage: int = 0


class SearchAnswer(Answer):
    query: str
    total: int
    hits: list[SearchHit]
    facets: dict[str, dict[str, int]]
    offset: int
    limit: int


class AppList(Answer):
    apps: list[AppInfo]
    total: int
    offset: int
    limit: int


class VersionDetail(VersionItem):
    readers: list[AppRef] = []
    facets: dict[str, Any] = Field(default={}, description="what a source stated of this version (OpenLineage "
                                   "dataset, input and output facets), as facet:<scope>:<name>")


class ArtifactAnswer(Answer):
    """An artifact with its versions, their creators and readers."""

    id: str
    uri: str
    name: str | None = None
    type: str
    tags: dict[str, str] = {}
    props: dict[str, Any] = {}
    first_ts: int
    last_ts: int
    project: str | None = None
    versions: list[VersionDetail] = []


class UserSummary(Model):
    name: str
    first_ts: int
    last_ts: int


class UserList(Answer):
    users: list[UserSummary]
    total: int
    offset: int
    limit: int


class UserDetail(Answer):
    name: str
    first_ts: int
    last_ts: int
    runs: list[AppInfo]
    total_runs: int
    jobs: list[str]
    offset: int
    limit: int

    def after_redaction(self) -> None:
        self.jobs = sorted({r.job for r in self.runs if r.job and not r.redacted})


class MostUsed(Answer):
    datasets: list[SearchHit]
    total: int


class RecentPipeline(Answer):
    dataset: str
    pipeline: str | None = None
    run: AppInfo | None = None
    runs_that_used_it: int = 0


class PipelineUsers(Answer):
    pipeline: str
    latest_version: str | None = None
    users: list[str] = []
    runs: list[AppInfo] = []

    def after_redaction(self) -> None:
        self.users = sorted({u for r in self.runs if not r.redacted for u in r.users})


class GraphNode(Visible):
    """A node of a drawn lineage subgraph: an artifact version or a run."""

    id: str
    kind: Literal["artifact", "app"]
    label: str
    uri: str
    type: str
    version: str = ""
    state: str = ""
    job: str | None = None
    users: list[str] = []
    created_ts: int | None = None
    depth: int = 0
    start: bool = False


class GraphEdge(Model):
    """An edge of a drawn subgraph, in the direction the data flowed (input version → run → output)."""

    source: str
    target: str
    rel: str
    tier: Tier | None = None


class LineageGraph(Answer):
    """The lineage around an artifact (its latest version or the one asked for), up, down or both."""

    start: list[str]
    direction: Literal["up", "down", "both"]
    depth: int
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    partial: bool = False
    reason: str | None = None

    def hide(self, sees: Callable[[str | None], bool]) -> int:
        """Hidden nodes get opaque ids numbered in this answer only (nothing to derive a name from), and the
        edges follow them."""
        opaque = {n.id: f"redacted:{i}" for i, n in enumerate((n for n in self.nodes if not sees(n.project)), 1)}
        if opaque:
            self.nodes = [n.hidden_copy().model_copy(update={"id": opaque[n.id], "depth": n.depth})
                          if n.id in opaque else n for n in self.nodes]
            self.edges = [e.model_copy(update={"source": opaque.get(e.source, e.source),
                                               "target": opaque.get(e.target, e.target)}) for e in self.edges]
        return len(opaque)


class ColumnInput(Visible):
    """A field of another dataset that a column is computed from, and how (OpenLineage columnLineage)."""

    uri: str = Field(description="the input dataset's artifact")
    namespace: str
    name: str
    field: str
    transformations: list[dict[str, Any]] = []


class ColumnField(Model):
    """One column of the dataset and the input fields it comes from."""

    name: str
    inputs: list[ColumnInput]
    transformation_description: str | None = None
    transformation_type: str | None = None


class ColumnLineage(Answer):
    """The column lineage a producer stated for a dataset (the ``columnLineage`` facet of the version it
    names, else of its newest version that has one): per output field, the input fields and the
    transformation; ``dataset``: input fields that affect the whole dataset (filters, joins, sorts)."""

    uri: str
    namespace: str
    name: str
    version: str | None = None
    fields: list[ColumnField] = []
    dataset: list[ColumnInput] = []
