"""The lineage queries: impact, audit (upstream), GDPR, and the reproducibility check."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from provenance.api.deps import AsOf, Budget, Depth, Limit, Offset, Svc, Who, as_of_ms
from provenance.graph.answers import ColumnLineage, Comparison, Gdpr, Impact, Upstream
from provenance.graph.queries import Limits

router = APIRouter(tags=["queries"])


@router.get("/api/impact")
def impact(svc: Svc, who: Who, app: str | None = None, job: str | None = None, artifact: str | None = None,
           as_of: AsOf = None, depth: Depth = 10, time_budget: Budget = 5.0, limit: Limit = 1000,
           offset: Offset = 0) -> Impact:
    """What was affected downstream of a run, a job or an artifact (``uri@version`` for one version)."""
    limits = Limits(depth=depth, time_budget_s=time_budget, limit=limit, offset=offset)
    return svc.impact(who, app=app, job=job, artifact=artifact, as_of=as_of_ms(as_of), limits=limits)


@router.get("/api/upstream")
@router.get("/api/audit")
def upstream(uri: str, svc: Svc, who: Who, as_of: AsOf = None, depth: Depth = 10, time_budget: Budget = 5.0,
             limit: Limit = 1000, offset: Offset = 0) -> Upstream:
    """How an artifact was made: its ancestors back to raw data, the runs, users, code and environments,
    and what used it afterwards (the audit)."""
    limits = Limits(depth=depth, time_budget_s=time_budget, limit=limit, offset=offset)
    return svc.upstream(who, uri, as_of_ms(as_of), limits)


@router.get("/api/gdpr")
def gdpr(svc: Svc, who: Who, uri: Annotated[list[str], Query(min_length=1, max_length=100)], as_of: AsOf = None,
         depth: Depth = 10, time_budget: Budget = 5.0, limit: Limit = 1000, offset: Offset = 0) -> Gdpr:
    """Every model and deployment downstream of the given data, with one evidence path each."""
    limits = Limits(depth=depth, time_budget_s=time_budget, limit=limit, offset=offset)
    return svc.gdpr(who, uri, as_of_ms(as_of), limits)


@router.get("/api/repro")
def repro(svc: Svc, who: Who, a: str, b: str | None = None, as_of: AsOf = None) -> Comparison:
    """Reproducibility: two runs compared (inputs, code, environment), or, without ``b``, a run against
    what was captured since (its inputs' and code files' latest versions, the newest run of its job)."""
    return svc.repro(who, a, b, as_of_ms(as_of))


@router.get("/api/column-lineage")
def column_lineage(uri: Annotated[str, Query(description="the dataset: a URI, a path, or URI@version")], svc: Svc,
                   who: Who, as_of: AsOf = None) -> ColumnLineage:
    """The column lineage a producer stated (OpenLineage ``columnLineage``): for each field of the dataset,
    the input datasets' fields it comes from and the transformation."""
    return svc.column_lineage(who, uri, as_of_ms(as_of))
