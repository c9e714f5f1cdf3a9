"""Search, and the Hopsworks paper's three questions."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from provenance.api.deps import AsOf, Offset, Svc, Who, as_of_ms
from provenance.errors import QueryError
from provenance.graph.answers import MostUsed, PipelineUsers, RecentPipeline, SearchAnswer
from provenance.search.port import SearchQuery

router = APIRouter(tags=["search"])
Words = Annotated[list[str] | None, Query(max_length=50)]


@router.get("/api/search")
def search(svc: Svc, who: Who, q: Annotated[str, Query(max_length=1000)] = "", kind: Words = None,
           type: Words = None, project: Words = None, user: Words = None,
           tag: Annotated[list[str] | None, Query(description="key=value", max_length=50)] = None,
           time_from: AsOf = None, time_to: AsOf = None,
           sort: Literal["relevance", "usage", "recent"] = "relevance",
           limit: Annotated[int, Query(ge=1, le=1000)] = 20, offset: Offset = 0) -> SearchAnswer:
    """Full text over names, paths, tags and descriptions (a trailing * is a prefix), with filters and
    facets; sorted by relevance, usage or recency."""
    tags = []
    for t in tag or []:
        key, sep, value = t.partition("=")
        if not sep:
            raise QueryError(f"tag filter {t!r} must be key=value")
        tags.append((key, value))
    query = SearchQuery(text=q, kinds=kind or (), types=type or (), projects=project or (), users=user or (),
                        tags=tags, time_from=as_of_ms(time_from, "time_from") if time_from else None,
                        time_to=as_of_ms(time_to, "time_to") if time_to else None, sort=sort, limit=limit,
                        offset=min(offset, 100_000))
    return svc.search(who, query)


@router.get("/api/search/most-used-datasets")
def most_used_datasets(svc: Svc, who: Who, limit: Annotated[int, Query(ge=1, le=1000)] = 10) -> MostUsed:
    """The paper's first question: the datasets read by the most runs."""
    return svc.most_used_datasets(who, limit)


@router.get("/api/search/recent-pipeline")
def recent_pipeline(dataset: str, svc: Svc, who: Who, as_of: AsOf = None) -> RecentPipeline:
    """The paper's second question: the most recent pipeline (job) that used dataset X."""
    return svc.recent_pipeline(who, dataset, as_of_ms(as_of))


@router.get("/api/search/pipeline-users")
def pipeline_users(job: str, svc: Svc, who: Who, as_of: AsOf = None) -> PipelineUsers:
    """The paper's third question: the users who ran the latest version of pipeline P successfully."""
    return svc.pipeline_users(who, job, as_of_ms(as_of))
