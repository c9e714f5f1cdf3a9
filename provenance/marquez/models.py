"""Marquez's JSON shapes, as its API returns them (``api/src/main/java/marquez/service/models``,
``spec/openapi.yml``, ``web/src/types/api.ts`` of MarquezProject/marquez): field names are Marquez's
(camelCase), times ISO-8601 strings, ids ``{namespace, name}``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RunState = Literal["NEW", "RUNNING", "COMPLETED", "ABORTED", "FAILED", "OTHER"]


class Shape(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Namespace(Shape):
    name: str
    createdAt: str
    updatedAt: str
    ownerName: str = "anonymous"
    description: str | None = None
    isHidden: bool = False


class NamespaceList(Shape):
    namespaces: list[Namespace]


class DatasetId(Shape):
    namespace: str
    name: str


class JobId(Shape):
    namespace: str
    name: str


class JobVersionId(Shape):
    namespace: str
    name: str
    version: str | None = Field(default=None, description="Marquez's job version: none here (jobs are not versioned)")


class DatasetVersionId(Shape):
    namespace: str
    name: str
    version: str


class RunDatasetVersion(Shape):
    datasetVersionId: DatasetVersionId
    facets: dict[str, Any] = {}


class Run(Shape):
    id: str = Field(description="the OpenLineage runId; for runs captured otherwise a uuid5 of their app id")
    createdAt: str
    updatedAt: str
    nominalStartTime: str | None = None
    nominalEndTime: str | None = None
    state: RunState
    startedAt: str | None = None
    endedAt: str | None = None
    durationMs: int | None = None
    args: dict[str, str] = {}
    jobVersion: JobVersionId
    inputDatasetVersions: list[RunDatasetVersion] = []
    outputDatasetVersions: list[RunDatasetVersion] = []
    context: dict[str, str] = {}
    facets: dict[str, Any] = {}


class RunList(Shape):
    runs: list[Run]
    totalCount: int


class Job(Shape):
    id: JobId
    type: Literal["BATCH", "STREAM", "SERVICE"] = "BATCH"
    name: str
    simpleName: str
    parentJobName: str | None = None
    parentJobUuid: str | None = None
    createdAt: str
    updatedAt: str
    namespace: str
    inputs: list[DatasetId] = []
    outputs: list[DatasetId] = []
    location: str | None = None
    context: dict[str, str] = {}
    description: str | None = None
    latestRun: Run | None = None
    latestRuns: list[Run] = []
    facets: dict[str, Any] = {}
    currentVersion: str | None = None
    tags: list[str] = []


class JobList(Shape):
    jobs: list[Job]
    totalCount: int


class JobVersion(Shape):
    id: JobVersionId
    type: Literal["BATCH", "STREAM", "SERVICE"] = "BATCH"
    name: str
    version: str
    createdAt: str
    namespace: str
    inputs: list[DatasetId] = []
    outputs: list[DatasetId] = []
    location: str | None = None
    context: dict[str, str] = {}
    description: str | None = None
    latestRun: Run | None = None
    facets: dict[str, Any] = {}


class JobVersionList(Shape):
    """Marquez's ``JobVersions``: no ``totalCount``."""

    versions: list[JobVersion]


class RunFacets(Shape):
    """Marquez's ``FacetsResult``: the run or job facets of one run."""

    runId: str
    facets: dict[str, Any] = {}


class DatasetField(Shape):
    name: str
    type: str | None = None
    tags: list[str] = []
    description: str | None = None


class ColumnLineageInputField(Shape):
    namespace: str
    dataset: str
    field: str
    transformationDescription: str | None = None
    transformationType: str | None = None


class ColumnLineage(Shape):
    name: str
    inputFields: list[ColumnLineageInputField]
    transformationDescription: str | None = None
    transformationType: str | None = None


class Dataset(Shape):
    id: DatasetId
    type: Literal["DB_TABLE", "STREAM"] = "DB_TABLE"
    name: str
    physicalName: str
    createdAt: str
    updatedAt: str
    namespace: str
    sourceName: str
    fields: list[DatasetField] = []
    tags: list[str] = []
    lastModifiedAt: str | None = None
    lastLifecycleState: str | None = None
    description: str | None = None
    facets: dict[str, Any] = {}
    currentVersion: str | None = Field(default=None, description="the newest version (its OpenLineage version, "
                                       "else its label), not a uuid")
    columnLineage: list[ColumnLineage] | None = None
    deleted: bool = False


class DatasetList(Shape):
    datasets: list[Dataset]
    totalCount: int


class DatasetVersion(Shape):
    id: DatasetVersionId
    type: Literal["DB_TABLE", "STREAM"] = "DB_TABLE"
    name: str
    physicalName: str
    createdAt: str
    version: str
    namespace: str
    sourceName: str
    fields: list[DatasetField] = []
    tags: list[str] = []
    description: str | None = None
    lifecycleState: str | None = None
    createdByRun: Run | None = None
    facets: dict[str, Any] = {}


class DatasetVersionList(Shape):
    versions: list[DatasetVersion]
    totalCount: int


class Edge(Shape):
    origin: str
    destination: str


class DatasetNodeData(Shape):
    """Marquez's DatasetData (a dataset node of a lineage graph)."""

    id: DatasetId
    type: Literal["DB_TABLE", "STREAM"] = "DB_TABLE"
    name: str
    physicalName: str
    createdAt: str
    updatedAt: str
    namespace: str
    sourceName: str
    fields: list[DatasetField] = []
    tags: list[str] = []
    lastModifiedAt: str | None = None
    description: str | None = None
    lastLifecycleState: str | None = None
    facets: dict[str, Any] = {}


class JobNodeData(Shape):
    """Marquez's JobData (a job node of a lineage graph)."""

    id: JobId
    type: Literal["BATCH", "STREAM", "SERVICE"] = "BATCH"
    name: str
    simpleName: str
    parentJobName: str | None = None
    parentJobUuid: str | None = None
    currentRunUuid: str | None = None
    createdAt: str
    updatedAt: str
    namespace: str
    inputs: list[DatasetId] = []
    outputs: list[DatasetId] = []
    location: str | None = None
    description: str | None = None
    latestRun: Run | None = None


class InputFieldData(Shape):
    namespace: str
    dataset: str
    datasetVersion: str | None = None
    field: str
    transformationDescription: str | None = None
    transformationType: str | None = None


class ColumnNodeData(Shape):
    """Marquez's ColumnLineageNodeData (a dataset field node of a column lineage graph)."""

    namespace: str
    dataset: str
    datasetVersion: str | None = None
    field: str
    fieldType: str | None = None
    transformationDescription: str | None = None
    transformationType: str | None = None
    inputFields: list[InputFieldData] = []


class Node(Shape):
    id: str
    type: Literal["DATASET", "JOB", "DATASET_FIELD"]
    data: DatasetNodeData | JobNodeData | ColumnNodeData | None = None
    inEdges: list[Edge] = []
    outEdges: list[Edge] = []


class Lineage(Shape):
    graph: list[Node]


class SearchResult(Shape):
    type: Literal["DATASET", "JOB"]
    name: str
    updatedAt: str
    namespace: str
    nodeId: str


class SearchResults(Shape):
    totalCount: int
    results: list[SearchResult]


class Tag(Shape):
    name: str
    description: str | None = None


class TagList(Shape):
    tags: list[Tag]


class LineageEvents(Shape):
    events: list[dict[str, Any]] = Field(description="OpenLineage RunEvents as received (of what the caller may see)")
    totalCount: int
