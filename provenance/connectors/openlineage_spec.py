"""The OpenLineage event spec (2-0-2) as pydantic models: what ``POST /api/v1/lineage`` accepts.

The reference is the spec's JSON Schema as the official Python client generates it
(``openlineage.client.event_v2`` and ``openlineage.client.generated.*``; ``tests/test_openlineage.py``
checks that the required fields here are the client's). Three events: a RunEvent (a run's state
change with its job and datasets), a DatasetEvent (metadata of one dataset) and a JobEvent (metadata
of a job and its declared datasets), told apart by the last part of ``schemaURL`` as Marquez does (a
RunEvent when it says nothing else).

What is checked: ``runId`` is a UUID, ``eventType`` one of the spec's values, ``eventTime`` a date-time
(with a time, as the client insists), names and namespaces non-empty strings, every facet a JSON
object whose base fields (``_producer``, ``_schemaURL``, ``_deleted``) have their types; and the facets
this service reads to build the graph (parent, errorMessage, ownership, version, lifecycleStateChange,
columnLineage, lineage, schema) have the spec's shape. Other facets are kept as they came. Like the
client and Marquez, a facet without ``_producer``/``_schemaURL`` is accepted, though the spec requires
them. Unknown properties are allowed, as the spec allows them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from provenance.errors import EventError
from provenance.events.serde import describe_validation

EVENT_TYPES = ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")
LIFECYCLE_STATES = ("ALTER", "CREATE", "DROP", "OVERWRITE", "RENAME", "TRUNCATE")
_EARLIEST, _LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


def _uuid(value: str) -> str:
    """A run id in its canonical form (lower case, hyphenated), as Marquez keeps it."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError(f"not a UUID: {value[:80]!r}") from None


def _date_time(value: str) -> str:
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an ISO-8601 date-time: {value[:80]!r}") from None
    if "t" not in value.lower():
        raise ValueError(f"a date-time needs a time: {value[:80]!r}")
    if not _EARLIEST <= (dt if dt.tzinfo else dt.replace(tzinfo=UTC)) <= _LATEST:
        raise ValueError(f"outside the years 1970 to 9999: {value[:80]!r}")
    return value


Text = Annotated[str, Field(min_length=1)]
RunId = Annotated[str, AfterValidator(_uuid)]
DateTime = Annotated[str, AfterValidator(_date_time)]


class Spec(BaseModel):
    """A part of the spec: its field names are the spec's (camelCase), as the JSON has them."""

    # JSON types exactly (no "1" for 1, no 1 for "1"), and the spec's additional properties allowed
    model_config = ConfigDict(strict=True, extra="allow", frozen=True)


# -- the facets this service reads --------------------------------------------------------------
class NameRef(Spec):
    namespace: Text
    name: Text


class RunRef(Spec):
    runId: RunId
    facets: dict[str, dict[str, Any]] | None = None


class JobRef(NameRef):
    facets: dict[str, dict[str, Any]] | None = None


class ParentRunFacet(Spec):
    run: RunRef
    job: JobRef
    root: dict[str, Any] | None = None


class ErrorMessageRunFacet(Spec):
    message: str
    programmingLanguage: str
    stackTrace: str | None = None


class Owner(Spec):
    name: str
    type: str | None = None


class OwnershipJobFacet(Spec):
    owners: list[Owner] | None = None


class DatasetVersionFacet(Spec):
    datasetVersion: str


class LifecycleStateChangeFacet(Spec):
    lifecycleStateChange: Literal["ALTER", "CREATE", "DROP", "OVERWRITE", "RENAME", "TRUNCATE"]
    previousIdentifier: NameRef | None = None


class Transformation(Spec):
    type: str
    subtype: str | None = None
    description: str | None = None
    masking: bool | None = None


class InputField(Spec):
    namespace: Text
    name: Text
    field: str
    transformations: list[Transformation] | None = None


class ColumnFields(Spec):
    inputFields: list[InputField]
    transformationDescription: str | None = None
    transformationType: str | None = None


class ColumnLineageDatasetFacet(Spec):
    fields: dict[str, ColumnFields]
    dataset: list[InputField] | None = None


class LineageInput(Spec):
    """A source of an explicit lineage relationship: a dataset (namespace and name) or a job."""

    type: Literal["DATASET", "JOB"]
    namespace: str | None = None
    name: str | None = None
    field: str | None = None
    runId: RunId | None = None
    transformations: list[Transformation] | None = None

    @model_validator(mode="after")
    def _named(self) -> LineageInput:
        if (self.namespace is None) != (self.name is None):
            raise ValueError("namespace and name go together")
        if self.type == "DATASET" and not (self.namespace and self.name):
            raise ValueError("a DATASET input needs namespace and name")
        return self


class LineageFieldEntry(Spec):
    inputs: list[LineageInput]


class LineageDatasetFacet(Spec):
    """The spec's dataset-to-dataset lineage facet (``lineage``, LineageFacet.json)."""

    inputs: list[LineageInput] | None = None
    fields: dict[str, LineageFieldEntry] | None = None


class LineageEntry(Spec):
    type: Literal["DATASET", "JOB"]
    namespace: str | None = None
    name: str | None = None
    runId: RunId | None = None
    inputs: list[LineageInput] | None = None
    fields: dict[str, LineageFieldEntry] | None = None

    @model_validator(mode="after")
    def _named(self) -> LineageEntry:
        if self.type == "DATASET" and not (self.namespace and self.name):
            raise ValueError("a DATASET entry needs namespace and name")
        return self


class LineageJobFacet(Spec):
    entries: list[LineageEntry]


class SchemaField(Spec):
    name: str
    type: str | None = None
    description: str | None = None
    ordinal_position: int | None = None
    fields: list[SchemaField] | None = None


class SchemaDatasetFacet(Spec):
    fields: list[SchemaField] | None = None


RUN_FACETS: dict[str, type[Spec]] = {"parent": ParentRunFacet, "errorMessage": ErrorMessageRunFacet}
JOB_FACETS: dict[str, type[Spec]] = {"ownership": OwnershipJobFacet, "lineage": LineageJobFacet}
DATASET_FACETS: dict[str, type[Spec]] = {
    "version": DatasetVersionFacet, "lifecycleStateChange": LifecycleStateChangeFacet,
    "columnLineage": ColumnLineageDatasetFacet, "lineage": LineageDatasetFacet, "schema": SchemaDatasetFacet}
_BASE_FIELDS = {"_producer": str, "_schemaURL": str, "_deleted": bool}


def _facets(value: dict[str, dict[str, Any]] | None, known: dict[str, type[Spec]]) -> dict[str, dict[str, Any]]:
    """Facets as sent, after checking each: an object whose base fields have their types, and the known
    ones of their spec's shape. A facet ``_deleted: true`` needs no more than that."""
    for name, facet in (value or {}).items():
        for key, typ in _BASE_FIELDS.items():
            if key in facet and not isinstance(facet[key], typ):
                raise ValueError(f"facet {name!r}: {key} must be a {typ.__name__}")
        if name in known and facet.get("_deleted") is not True:
            try:
                known[name].model_validate(facet)
            except ValidationError as exc:
                raise ValueError(f"facet {name!r}: {describe_validation(exc)}") from None
    return value or {}


FacetMap = dict[str, dict[str, Any]]


# -- the events ---------------------------------------------------------------------------------
class Run(Spec):
    runId: RunId
    facets: FacetMap | None = None

    @field_validator("facets")
    @classmethod
    def _known(cls, value: FacetMap | None) -> FacetMap:
        return _facets(value, RUN_FACETS)


class Job(Spec):
    namespace: Text
    name: Text
    facets: FacetMap | None = None

    @field_validator("facets")
    @classmethod
    def _known(cls, value: FacetMap | None) -> FacetMap:
        return _facets(value, JOB_FACETS)


class Dataset(Spec):
    namespace: Text
    name: Text
    facets: FacetMap | None = None

    @field_validator("facets")
    @classmethod
    def _known(cls, value: FacetMap | None) -> FacetMap:
        return _facets(value, DATASET_FACETS)


class InputDataset(Dataset):
    inputFacets: FacetMap | None = None

    @field_validator("inputFacets")
    @classmethod
    def _objects(cls, value: FacetMap | None) -> FacetMap:
        return _facets(value, {})


class OutputDataset(Dataset):
    outputFacets: FacetMap | None = None

    @field_validator("outputFacets")
    @classmethod
    def _objects(cls, value: FacetMap | None) -> FacetMap:
        return _facets(value, {})


class BaseEvent(Spec):
    eventTime: DateTime
    producer: Text
    schemaURL: str | None = None


class RunEvent(BaseEvent):
    run: Run
    job: Job
    eventType: Literal["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"] | None = None
    inputs: list[InputDataset] | None = None
    outputs: list[OutputDataset] | None = None


class DatasetEvent(BaseEvent):
    dataset: Dataset


class JobEvent(BaseEvent):
    job: Job
    inputs: list[InputDataset] | None = None
    outputs: list[OutputDataset] | None = None


AnyEvent = RunEvent | DatasetEvent | JobEvent
_BY_SCHEMA: dict[str, type[BaseEvent]] = {"RunEvent": RunEvent, "DatasetEvent": DatasetEvent, "JobEvent": JobEvent}


def parse_event(data: Any) -> AnyEvent:
    """The event ``data`` holds, validated; an `EventError` says what is wrong (a 422 at the API)."""
    if not isinstance(data, dict):
        raise EventError(f"an OpenLineage event must be a JSON object, not {type(data).__name__}")
    schema = data.get("schemaURL")
    kind = schema.rsplit("/", 1)[-1] if isinstance(schema, str) else "RunEvent"
    model = _BY_SCHEMA.get(kind, RunEvent)
    try:
        return model.model_validate(data)  # type: ignore[return-value]
    except ValidationError as exc:
        raise EventError(f"OpenLineage {model.__name__}: {describe_validation(exc)}") from exc
