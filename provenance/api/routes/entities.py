"""Runs, artifacts and users."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from provenance.api.deps import AsOf, Limit, Offset, Svc, Who, as_of_ms
from provenance.graph.answers import AppInfo, AppList, ArtifactAnswer, Footprint, UserDetail, UserList
from provenance.graph.queries import Limits

router = APIRouter()


@router.get("/api/apps", tags=["apps"])
def list_apps(svc: Svc, who: Who, name: str | None = None, user: str | None = None, state: str | None = None,
              as_of: AsOf = None, limit: Limit = 100, offset: Offset = 0) -> AppList:
    """Runs, newest first: of a job (``project/stage`` or ``stage``), by a user, in a state."""
    return svc.apps(who, job=name, user=user, state=state, as_of=as_of_ms(as_of), limit=limit, offset=offset)


@router.get("/api/apps/{app_id}", tags=["apps"])
def get_app(app_id: str, svc: Svc, who: Who, as_of: AsOf = None) -> AppInfo:
    return svc.app(who, app_id, as_of_ms(as_of))


@router.get("/api/apps/{app_id}/footprint", tags=["queries"])
def footprint(app_id: str, svc: Svc, who: Who, as_of: AsOf = None, limit: Limit = 1000,
              offset: Offset = 0) -> Footprint:
    """What the run read and wrote: artifact versions and files with their Hopsworks types."""
    return svc.footprint(who, app_id, as_of_ms(as_of), Limits(limit=limit, offset=offset))


@router.get("/api/artifacts", tags=["artifacts"])
def get_artifact_by_uri(uri: Annotated[str, Query(description="URI, absolute path, or URI@version")], svc: Svc,
                        who: Who, as_of: AsOf = None) -> ArtifactAnswer:
    return svc.artifact(who, uri, as_of_ms(as_of))


@router.get("/api/artifacts/{artifact_id:path}", tags=["artifacts"])
def get_artifact(artifact_id: str, svc: Svc, who: Who, as_of: AsOf = None) -> ArtifactAnswer:
    """An artifact by its node id (``artifact:<uri>``) or URI."""
    return svc.artifact(who, artifact_id.removeprefix("artifact:"), as_of_ms(as_of))


@router.get("/api/users", tags=["users"])
def list_users(svc: Svc, who: Who, as_of: AsOf = None, limit: Limit = 100, offset: Offset = 0) -> UserList:
    return svc.users(who, as_of_ms(as_of), limit, offset)


@router.get("/api/users/{name}", tags=["users"])
def get_user(name: str, svc: Svc, who: Who, as_of: AsOf = None, limit: Limit = 100,
             offset: Offset = 0) -> UserDetail:
    """A user and the runs they made (those the caller may see)."""
    return svc.user(who, name, as_of_ms(as_of), limit, offset)
