"""OpenLineage RunEvents → canonical events (raw format ``openlineage``).

Marquez-compatible clients post RunEvents to ``POST /api/v1/lineage``; the API puts each one on
``prov.raw.openlineage`` unchanged, and this normalizer maps it: the run is an app (START → started,
COMPLETE → finished, FAIL → failed, ABORT → killed; RUNNING and OTHER only carry datasets), the job's
namespace and name are its job, each input a read and each output a write (a create or a delete when
its ``lifecycleStateChange`` facet says CREATE or DROP). Dataset URIs follow the
OpenLineage naming spec: ``file``/``s3``/``hdfs``/``gs`` namespaces give real URIs, anything else
``openlineage://<namespace>/<name>``.
"""

from __future__ import annotations

from typing import Any

import orjson

from provenance.errors import EventError
from provenance.events import Event
from provenance.events.model import to_ms

_STATES = {"START": "started", "COMPLETE": "finished", "FAIL": "failed", "ABORT": "killed"}
_LIFECYCLE = {"CREATE": "create", "OVERWRITE": "write", "DROP": "delete", "TRUNCATE": "write"}
_SCHEMES = ("file", "s3", "s3a", "hdfs", "gs", "abfss", "wasbs")


def dataset_uri(namespace: str, name: str) -> str:
    ns = namespace.rstrip("/")
    scheme = ns.split("://", 1)[0] if "://" in ns else ns
    if scheme in _SCHEMES:
        if scheme == "file":
            return "file://" + ("/" + name.lstrip("/"))
        return f"{ns}/{name.lstrip('/')}" if "://" in ns else f"{scheme}://{name.lstrip('/')}"
    return f"openlineage://{ns.replace('://', '/')}/{name.lstrip('/')}"


def _require(data: dict[str, Any], *path: str) -> Any:
    cur: Any = data
    for key in path:
        if not isinstance(cur, dict) or key not in cur:
            raise EventError(f"OpenLineage RunEvent without {'.'.join(path)}")
        cur = cur[key]
    return cur


def run_event_to_events(data: dict[str, Any]) -> list[Event]:
    if not isinstance(data, dict):
        raise EventError("an OpenLineage RunEvent must be a JSON object")
    event_type = str(data.get("eventType") or "OTHER").upper()
    run_id = str(_require(data, "run", "runId"))
    job_ns, job_name = str(_require(data, "job", "namespace")), str(_require(data, "job", "name"))
    try:
        ts = to_ms(str(_require(data, "eventTime")))
    except ValueError as exc:
        raise EventError(f"OpenLineage eventTime: {exc}") from exc
    app = f"openlineage:{run_id}"
    owners = (((data.get("job") or {}).get("facets") or {}).get("ownership") or {}).get("owners") or []
    user = str(owners[0].get("name")) if owners and isinstance(owners[0], dict) and owners[0].get("name") else None
    base: dict[str, Any] = {"source": "openlineage", "app_id": app, "ts": ts, **({"user": user} if user else {})}
    events: list[dict[str, Any]] = []
    state = _STATES.get(event_type)
    if state:
        attrs: dict[str, Any] = {"name": job_name, "project": job_ns, "namespace": job_ns,
                                 "producer": data.get("producer")}
        facets = (data.get("run") or {}).get("facets") or {}
        if isinstance(facets.get("errorMessage"), dict):
            attrs["error"] = facets["errorMessage"].get("message")
        events.append({**base, "kind": "app", "op": state, "attrs": {k: v for k, v in attrs.items() if v},
                       "event_id": f"openlineage:{run_id}:{event_type}"})
    for direction, default_op in (("inputs", "read"), ("outputs", "write")):
        for i, ds in enumerate(data.get(direction) or []):
            if not isinstance(ds, dict) or "namespace" not in ds or "name" not in ds:
                raise EventError(f"OpenLineage {direction}[{i}] needs namespace and name")
            change = str(((ds.get("facets") or {}).get("lifecycleStateChange") or {}).get("lifecycleStateChange", ""))
            op = _LIFECYCLE.get(change.upper(), default_op) if direction == "outputs" else default_op
            events.append({**base, "kind": "file", "op": op, "uri": dataset_uri(str(ds["namespace"]), str(ds["name"])),
                           "event_id": f"openlineage:{run_id}:{event_type}:{direction}:{i}",
                           "attrs": {"namespace": ds["namespace"], "name": ds["name"]}})
    return [Event.model_validate(e) for e in events]


def normalize(value: bytes) -> list[Event]:
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise EventError(f"not JSON: {exc}") from exc
    return run_event_to_events(data)

