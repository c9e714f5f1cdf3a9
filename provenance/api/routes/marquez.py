"""Marquez's read API under ``/api/v1``, in Marquez's JSON shapes, for Marquez's clients and web UI.

Namespaces such as ``postgres://db:5432`` are one path segment, sent encoded (``postgres%3A%2F%2Fdb%3A5432``)
as Marquez's clients send them: these routes match the path as it was sent and decode each segment
after, so an encoded ``/`` stays inside its segment.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import unquote

from fastapi import APIRouter, Query
from fastapi.routing import APIRoute
from starlette.routing import Match
from starlette.types import Scope

from provenance.access import Principal
from provenance.api.deps import Limit, Offset, Svc, Who
from provenance.errors import QueryError
from provenance.marquez import MarquezView
from provenance.marquez import models as m
from provenance.service import Service, parse_time


class SentPathRoute(APIRoute):
    """A route matched against the path as sent (``raw_path``), its parameters decoded after matching."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        raw = scope.get("raw_path") if scope["type"] == "http" else None
        if not raw:
            return super().matches(scope)
        sent = raw.decode("latin-1").split("?", 1)[0]
        match, child = super().matches({**scope, "path": sent, "root_path": ""})
        if match is not Match.NONE:
            params = dict(child.get("path_params", {}))
            for name in self.param_convertors:
                if isinstance(params.get(name), str):
                    params[name] = unquote(params[name])
            child["path_params"] = params
        return match, child


router = APIRouter(tags=["marquez"], route_class=SentPathRoute)
Depth = Annotated[int, Query(ge=0, le=100, description="jobs (or datasets, for column lineage) away from the node")]
NodeId = Annotated[str, Query(alias="nodeId", min_length=1, max_length=4096,
                              description="dataset:<namespace>:<name> or job:<namespace>:<name>")]


def _view(svc: Service, who: Principal) -> MarquezView:
    return MarquezView(svc, who)


@router.get("/api/v1/namespaces")
def namespaces(svc: Svc, who: Who, limit: Limit = 100, offset: Offset = 0) -> m.NamespaceList:
    """Namespaces: of OpenLineage jobs their namespace, of other runs their project (or ``default``), of
    datasets their OpenLineage namespace (or one derived from the URI's scheme and host)."""
    return _view(svc, who).namespaces(limit, offset)


@router.get("/api/v1/namespaces/{namespace}")
def namespace(namespace: str, svc: Svc, who: Who) -> m.Namespace:
    return _view(svc, who).namespace(namespace)


@router.get("/api/v1/namespaces/{namespace}/jobs")
def jobs(namespace: str, svc: Svc, who: Who, limit: Limit = 100, offset: Offset = 0) -> m.JobList:
    return _view(svc, who).jobs(namespace, limit, offset)


@router.get("/api/v1/jobs")
def all_jobs(svc: Svc, who: Who, limit: Limit = 100, offset: Offset = 0) -> m.JobList:
    """The jobs of every namespace, the last updated first."""
    return _view(svc, who).all_jobs(limit, offset)


@router.get("/api/v1/namespaces/{namespace}/jobs/{job}")
def job(namespace: str, job: str, svc: Svc, who: Who) -> m.Job:
    return _view(svc, who).job(namespace, job)


@router.get("/api/v1/namespaces/{namespace}/jobs/{job}/versions")
def job_versions(namespace: str, job: str, svc: Svc, who: Who) -> m.JobVersionList:
    """A job's versions: none, jobs are not versioned here (``404`` for a job that is not there)."""
    return _view(svc, who).job_versions(namespace, job)


@router.get("/api/v1/namespaces/{namespace}/jobs/{job}/versions/{version}")
def job_version(namespace: str, job: str, version: str, svc: Svc, who: Who) -> m.JobVersion:
    """A version of a job: never found, jobs are not versioned here."""
    return _view(svc, who).job_version(namespace, job, version)


@router.get("/api/v1/namespaces/{namespace}/jobs/{job}/runs")
def job_runs(namespace: str, job: str, svc: Svc, who: Who, limit: Limit = 100, offset: Offset = 0) -> m.RunList:
    """The job's runs, newest first."""
    return _view(svc, who).job_runs(namespace, job, limit, offset)


@router.get("/api/v1/jobs/runs/{run_id}")
@router.get("/api/v1/runs/{run_id}")
def run(run_id: str, svc: Svc, who: Who) -> m.Run:
    """A run by its id: the OpenLineage runId, or for a run captured otherwise the uuid5 of its app id."""
    return _view(svc, who).run(run_id)


@router.get("/api/v1/jobs/runs/{run_id}/facets")
def run_facets(run_id: str, svc: Svc, who: Who,
               type: Annotated[Literal["run", "job", "dataset", "RUN", "JOB", "DATASET"],
                               Query(description="the run's facets, or its job's")]) -> m.RunFacets:
    """The run facets of a run, or the facets of its job as they stood at the run's last event."""
    return _view(svc, who).run_facets(run_id, type.lower())


@router.get("/api/v1/namespaces/{namespace}/datasets")
def datasets(namespace: str, svc: Svc, who: Who, limit: Limit = 100, offset: Offset = 0) -> m.DatasetList:
    return _view(svc, who).datasets(namespace, limit, offset)


@router.get("/api/v1/namespaces/{namespace}/datasets/{dataset}")
def dataset(namespace: str, dataset: str, svc: Svc, who: Who) -> m.Dataset:
    """A dataset, its fields (schema facet), facets and column lineage."""
    return _view(svc, who).dataset(namespace, dataset)


@router.get("/api/v1/namespaces/{namespace}/datasets/{dataset}/versions")
def dataset_versions(namespace: str, dataset: str, svc: Svc, who: Who, limit: Limit = 100,
                     offset: Offset = 0) -> m.DatasetVersionList:
    """The dataset's versions, newest first, each with the run that made it."""
    return _view(svc, who).dataset_versions(namespace, dataset, limit, offset)


@router.get("/api/v1/namespaces/{namespace}/datasets/{dataset}/versions/{version}")
def dataset_version(namespace: str, dataset: str, version: str, svc: Svc, who: Who) -> m.DatasetVersion:
    """One version of a dataset, by its name (``version`` of the versions) or its key."""
    return _view(svc, who).dataset_version(namespace, dataset, version)


@router.get("/api/v1/lineage")
def lineage(node_id: NodeId, svc: Svc, who: Who, depth: Depth = 20) -> m.Lineage:
    """The jobs and datasets connected to a node, up and down, at most ``depth`` jobs away."""
    return _view(svc, who).lineage(node_id, depth)


@router.get("/api/v1/column-lineage")
def column_lineage(node_id: NodeId, svc: Svc, who: Who, depth: Depth = 20,
                   with_downstream: Annotated[bool, Query(alias="withDownstream")] = False) -> m.Lineage:
    """The fields of a dataset (``dataset:…``, one field: ``datasetField:<ns>:<name>:<field>``, or a job's
    inputs and outputs: ``job:…``) and the fields they come from, upstream (and downstream with
    ``withDownstream``)."""
    return _view(svc, who).column_lineage(node_id, depth, with_downstream)


@router.get("/api/v1/search")
def search(svc: Svc, who: Who, q: Annotated[str, Query(min_length=1, max_length=1024)],
           filter: Literal["dataset", "job", "DATASET", "JOB"] | None = None,
           sort: Literal["name", "updated_at", "NAME", "UPDATED_AT"] = "name",
           limit: Annotated[int, Query(ge=1, le=1000)] = 10, namespace: str | None = None) -> m.SearchResults:
    """Jobs and datasets whose names match ``%q%`` (SQL ``ILIKE``: any case, ``%`` and ``_`` wildcards)."""
    return _view(svc, who).search(q, filter, sort.lower(), limit, namespace)


@router.get("/api/v1/tags")
def tags(svc: Svc, who: Who, limit: Limit = 100, offset: Offset = 0) -> m.TagList:
    """The tags set on the datasets the caller may see: their keys, by name (no descriptions here)."""
    return _view(svc, who).tags(limit, offset)


def _time(value: str | None, default: str, name: str) -> datetime:
    try:
        return parse_time(value or default)
    except ValueError as exc:
        raise QueryError(f"{name} is an ISO-8601 time, not {value[:80] if value else value!r}") from exc


@router.get("/api/v1/events/lineage")
def lineage_events(svc: Svc, who: Who,
                   before: Annotated[str | None, Query(max_length=64, description="eventTime before (ISO)")] = None,
                   after: Annotated[str | None, Query(max_length=64, description="eventTime at or after")] = None,
                   sort_direction: Annotated[Literal["asc", "desc", "ASC", "DESC"], Query(alias="sortDirection")]
                   = "desc", limit: Limit = 100, offset: Offset = 0) -> m.LineageEvents:
    """The OpenLineage RunEvents as received, by eventTime (``desc``: newest first), of jobs whose namespace
    the caller may see, without the datasets (and facet parts naming them) she may not see."""
    return _view(svc, who).lineage_events(_time(before, "2030-01-01T00:00:00+00:00", "before"),
                                          _time(after, "1970-01-01T00:00:00+00:00", "after"),
                                          sort_direction.lower() == "desc", limit, offset)
