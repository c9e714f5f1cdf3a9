"""OpenLineage events → canonical events (raw format ``openlineage``).

Clients post RunEvents, DatasetEvents and JobEvents to ``POST /api/v1/lineage`` (Marquez's route);
the API validates each (`provenance.connectors.openlineage_spec`) and puts it on
``prov.raw.openlineage`` unchanged, and this normalizer maps it:

- a RunEvent's run is an app ``openlineage:<runId>`` (START → started, COMPLETE → finished, FAIL →
  failed, ABORT → killed; RUNNING and OTHER change no state), a run of the job ``<namespace>/<name>``;
  each input a read, each output a write (a create or a delete when its ``lifecycleStateChange`` facet
  says CREATE or DROP), of the version its ``version`` facet names;
- every facet is stored where it belongs, as a property of that node (``describe`` events): run facets
  on the app, job facets on the job, dataset facets (and input/output facets) on the artifact version
  the dataset's ``version`` facet names, or on the artifact without one. A dataset's namespace and
  name, as received, are kept on its artifact;
- the ``parent`` run facet links the run to its parent run (PARENT) and that run to its job;
- the ``lineage`` facet (the spec's explicit dataset-to-dataset lineage, LineageFacet.json), on a
  dataset or a job, becomes ``link`` events (``derived_from``, ``attrs.tier: declared``);
- a DatasetEvent describes its dataset, a JobEvent its job (with its declared inputs and outputs) and
  their datasets: metadata with no run, so no reads or writes.

Stored facets are bounded: at most `FACET_BUDGET` bytes (as JSON) of them per event, the smaller ones
first; what does not fit is named on the event's run (or job, or dataset) as ``openlineage.cut``, and
in the API's answer. Dataset URIs follow the OpenLineage naming spec: ``file``/``s3``/``hdfs``/``gs``…
namespaces give real URIs, anything else ``openlineage://<namespace>/<name>``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson
from pydantic import ValidationError

from provenance.connectors.openlineage_spec import (
    AnyEvent,
    Dataset,
    DatasetEvent,
    JobEvent,
    LineageDatasetFacet,
    LineageJobFacet,
    ParentRunFacet,
    RunEvent,
    parse_event,
)
from provenance.errors import EventError
from provenance.events import Event
from provenance.events.model import MAX_ATTRS_DEPTH, event_id_for, to_ms
from provenance.events.serde import describe_validation
from provenance.graph.model import facet_key

FACET_BUDGET = 256 * 1024  # bytes of facets (as JSON) stored per event
SOURCE = "openlineage"
NAMESPACE_KEY, NAME_KEY = "openlineage.namespace", "openlineage.name"  # a dataset as received, on its artifact
FACET_DEPTH = MAX_ATTRS_DEPTH - 4  # a facet's nesting: the event's properties hold it two levels down
CUT_KEY = "openlineage.cut"  # the facets of an event that were not stored
INPUTS_KEY, OUTPUTS_KEY = "openlineage.inputs", "openlineage.outputs"  # a JobEvent's declared datasets
_STATES = {"START": "started", "COMPLETE": "finished", "FAIL": "failed", "ABORT": "killed"}
_LIFECYCLE = {"CREATE": "create", "OVERWRITE": "write", "DROP": "delete", "TRUNCATE": "write"}
_SCHEMES = ("file", "s3", "s3a", "hdfs", "gs", "abfss", "wasbs")
_SAFE_VERSION = re.compile(r"[A-Za-z0-9._+\-:=,][A-Za-z0-9._+\-:=,~]{0,127}")
# what a name may keep in a URI: the rest (space, '#', '?', '%', controls) is percent-encoded, so that no
# name loses a part to a URI's fragment or query
_NAME_SAFE = "/:@!$&'()*+,;=-._~"


def dataset_uri(namespace: str, name: str) -> str:
    """The URI of the dataset ``namespace``/``name`` (OpenLineage naming)."""
    ns = namespace.rstrip("/")
    scheme = ns.split("://", 1)[0] if "://" in ns else ns
    path = quote(name.lstrip("/"), safe=_NAME_SAFE)
    if scheme in _SCHEMES:
        if scheme == "file":
            return "file:///" + path
        return f"{quote(ns, safe=_NAME_SAFE)}/{path}" if "://" in ns else f"{scheme}://{path}"
    return f"openlineage://{quote(ns.replace('://', '/'), safe=_NAME_SAFE)}/{path}"


def version_key(version: str) -> str:
    """The key a dataset version is kept under: the version itself when it can be one (no ``@`` or ``/``,
    not ``~…``, which implicit versions use), else a digest of it. The version as sent stays in the
    ``version`` facet."""
    if _SAFE_VERSION.fullmatch(version):
        return version
    return "h" + hashlib.sha256(version.encode()).hexdigest()[:16]


@dataclass
class Mapped:
    """An OpenLineage event as canonical events, and the facets that were not stored (`FACET_BUDGET`)."""

    kind: str  # RunEvent | DatasetEvent | JobEvent
    key: str  # the bus key: the run, else the job or dataset (one thing's events stay in order)
    events: list[Event]
    cut: list[str] = field(default_factory=list)


@dataclass
class _FacetPlan:
    """Facets waiting for the budget: (slot, property key, value, size, label)."""

    items: list[tuple[tuple[str, ...], str, Any, int, str]] = field(default_factory=list)
    too_deep: list[str] = field(default_factory=list)

    def add(self, slot: tuple[str, ...], scope: str, facets: dict[str, Any] | None, where: str) -> None:
        for name, value in (facets or {}).items():
            stored = None if isinstance(value, dict) and value.get("_deleted") is True else value
            if _depth(stored) > FACET_DEPTH:  # stored inside an event's properties, which bound the nesting
                self.too_deep.append(f"{where}.{name} (nested more than {FACET_DEPTH} deep)")
                continue
            self.items.append((slot, facet_key(scope, name), stored, len(orjson.dumps(stored)), f"{where}.{name}"))

    def select(self, budget: int) -> tuple[dict[tuple[str, ...], dict[str, Any]], list[str]]:
        """The facets kept, by slot (the smallest first, until the budget is spent), and the others named."""
        kept: dict[tuple[str, ...], dict[str, Any]] = {}
        cut = list(self.too_deep)
        used = 0
        for i in sorted(range(len(self.items)), key=lambda i: (self.items[i][3], i)):
            slot, key, value, size, label = self.items[i]
            if used + size <= budget:
                used += size
                kept.setdefault(slot, {})[key] = value
            else:
                cut.append(f"{label} ({size} bytes)")
        return kept, sorted(cut)


def _depth(value: Any) -> int:
    """How deep objects and arrays nest in ``value`` (without recursion: a hostile facet may nest thousands
    deep)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict | list):
            deepest = max(deepest, d)
            if d > FACET_DEPTH:
                return d
            stack.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))
    return deepest


def to_events(data: Any, budget: int = FACET_BUDGET) -> Mapped:
    """The canonical events of one OpenLineage event (a dict from JSON); `EventError` if it is invalid."""
    parsed = parse_event(data)
    try:
        return _map(parsed, budget)
    except ValidationError as exc:  # a name that makes no URI, a time out of range: the event is bad
        raise EventError(f"OpenLineage event: {describe_validation(exc)}") from exc
    except ValueError as exc:
        raise EventError(f"OpenLineage event: {exc}") from exc


def normalize(value: bytes) -> list[Event]:
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise EventError(f"not JSON: {exc}") from exc
    return to_events(data).events


def _map(ev: AnyEvent, budget: int) -> Mapped:
    ts = to_ms(ev.eventTime)
    if isinstance(ev, RunEvent):
        return _run_event(ev, ts, budget)
    if isinstance(ev, JobEvent):
        return _job_event(ev, ts, budget)
    return _dataset_event(ev, ts, budget)


def _event(**fields: Any) -> Event:
    return Event.model_validate({"source": SOURCE, **fields})


def _dataset_events(ds: Dataset, ts: int, eid: str, op: str | None, app: str | None, user: str | None,
                    version: str | None) -> list[Event]:
    """The access of a run to a dataset (None: metadata only), and its identity on its artifact."""
    uri = dataset_uri(ds.namespace, ds.name)
    out = []
    if op is not None and app is not None:
        attrs: dict[str, Any] = {"namespace": ds.namespace, "name": ds.name, "tier": "declared"}
        if version is not None:
            attrs["version"] = version
        out.append(_event(kind="file", op=op, uri=uri, app_id=app, user=user, ts=ts, event_id=eid, attrs=attrs))
    out.append(_identity(ds.namespace, ds.name, uri, ts, eid))
    return out


def _identity(namespace: str, name: str, uri: str, ts: int, eid: str) -> Event:
    """The dataset's namespace and name as received, kept on its artifact (they make the URI, not back)."""
    return _event(kind="describe", op="artifact", uri=uri, ts=ts, event_id=f"{eid}:identity",
                  attrs={"props": {NAMESPACE_KEY: namespace, NAME_KEY: name}})


def _live(facets: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
    """A facet as sent, unless it is absent or deleted (``_deleted: true``, whose shape is not checked)."""
    facet = (facets or {}).get(name)
    return facet if isinstance(facet, dict) and facet.get("_deleted") is not True else None


def _version_of(ds: Dataset) -> str | None:
    facet = _live(ds.facets, "version")
    return version_key(facet["datasetVersion"]) if facet else None


def _links(target: tuple[str, str], sources: Iterable[Any], ts: int, app: str | None, eid: str) -> list[Event]:
    """``link`` events: the target dataset derives from each DATASET source of a lineage facet."""
    uri = dataset_uri(*target)
    out = [_identity(target[0], target[1], uri, ts, f"{eid}:lineage")]
    for src in sources:
        if src.type != "DATASET" or not src.namespace or not src.name:
            continue
        dst = dataset_uri(src.namespace, src.name)
        if dst == uri:
            continue
        out.append(_identity(src.namespace, src.name, dst, ts, f"{eid}:lineage:{dst}"))
        # without a run, one declaration sent in many events is one link (its app is named after the id)
        link_id = f"{eid}:lineage:{dst}" if app else event_id_for(SOURCE, f"link\x00{uri}\x00{dst}")
        out.append(_event(kind="link", op="derived_from", uri=uri, dst=dst, app_id=app, ts=ts, event_id=link_id,
                          attrs={"tier": "declared", "namespace": target[0], "name": target[1],
                                 "from_namespace": src.namespace, "from_name": src.name}))
    return out


def _dataset_lineage(ds: Dataset, ts: int, app: str | None, eid: str) -> list[Event]:
    facet = _live(ds.facets, "lineage")
    if facet is None:
        return []
    lin = LineageDatasetFacet.model_validate(facet)
    sources = [*(lin.inputs or ()), *(i for entry in (lin.fields or {}).values() for i in entry.inputs)]
    return _links((ds.namespace, ds.name), sources, ts, app, eid)


def _job_lineage(facets: dict[str, Any] | None, ts: int, app: str | None, eid: str) -> list[Event]:
    facet = _live(facets, "lineage")
    if facet is None:
        return []
    out = []
    for entry in LineageJobFacet.model_validate(facet).entries:
        if entry.type == "DATASET" and entry.namespace and entry.name:
            sources = [*(entry.inputs or ()), *(i for f in (entry.fields or {}).values() for i in f.inputs)]
            out += _links((entry.namespace, entry.name), sources, ts, app, eid)
    return out


def _describe_datasets(kept: dict[tuple[str, ...], dict[str, Any]], ts: int, eid: str) -> list[Event]:
    """The describe events of the datasets' kept facets (slots ("artifact", uri, version key or ""))."""
    out = []
    for slot, props in kept.items():
        if slot[0] != "artifact":
            continue
        _, uri, version = slot
        attrs: dict[str, Any] = {"props": props, **({"version": version} if version else {})}
        out.append(_event(kind="describe", op="artifact", uri=uri, ts=ts, event_id=f"{eid}:facets:{uri}@{version}",
                          attrs=attrs))
    return out


def _plan_dataset(plan: _FacetPlan, ds: Dataset, where: str, extra: tuple[str, dict[str, Any] | None] | None,
                  also_artifact: bool) -> None:
    """Plan the facets of a dataset: on the version its ``version`` facet names, else on the artifact
    (and on both for metadata events, whose version no run may ever write)."""
    uri = dataset_uri(ds.namespace, ds.name)
    version = _version_of(ds)
    slots = [("artifact", uri, version or "")]
    if version and also_artifact:
        slots.append(("artifact", uri, ""))
    for slot in slots:
        plan.add(slot, "dataset", ds.facets, where)
        if extra is not None:
            plan.add(slot, extra[0], extra[1], f"{where}.{extra[0]}Facets")


def _run_event(ev: RunEvent, ts: int, budget: int) -> Mapped:
    run_id = ev.run.runId
    event_type = ev.eventType or "OTHER"
    app = f"openlineage:{run_id}"
    job_ns, job_name = ev.job.namespace, ev.job.name
    eid = f"openlineage:{run_id}:{event_type}:{ts}"
    owners = (_live(ev.job.facets, "ownership") or {}).get("owners") or []
    user = str(owners[0]["name"]) if owners and owners[0]["name"] else None
    plan = _FacetPlan()
    plan.add(("app",), "run", ev.run.facets, "run.facets")
    plan.add(("job",), "job", ev.job.facets, "job.facets")
    for i, inp in enumerate(ev.inputs or []):
        _plan_dataset(plan, inp, f"inputs[{i}]", ("input", inp.inputFacets), also_artifact=False)
    for i, out in enumerate(ev.outputs or []):
        _plan_dataset(plan, out, f"outputs[{i}]", ("output", out.outputFacets), also_artifact=False)
    kept, cut = plan.select(budget)
    events: list[Event] = []
    who = {"user": user} if user else {}
    state = _STATES.get(event_type)
    run_attrs: dict[str, Any] = {"name": job_name, "project": job_ns, "namespace": job_ns}
    if state:
        attrs: dict[str, Any] = {**run_attrs, "producer": ev.producer}
        error = _live(ev.run.facets, "errorMessage")
        if error:
            attrs["error"] = error["message"]
        events.append(_event(kind="app", op=state, app_id=app, ts=ts, event_id=eid, attrs=attrs, **who))
    props = {**run_attrs, **kept.get(("app",), {}), **({CUT_KEY: [f"{event_type} {ev.eventTime}: {c}" for c in cut]}
                                                       if cut else {})}
    describe: dict[str, Any] = {"props": props, "job": {"name": job_name, "project": job_ns}}
    parent = _live(ev.run.facets, "parent")
    p = ParentRunFacet.model_validate(parent) if parent else None
    if p is not None and p.run.runId != run_id:
        describe["parent"] = {"app_id": f"openlineage:{p.run.runId}", "project": p.job.namespace,
                              "job": {"name": p.job.name, "project": p.job.namespace}}
    events.append(_event(kind="describe", op="app", app_id=app, ts=ts, event_id=f"{eid}:run", attrs=describe, **who))
    if kept.get(("job",)):
        events.append(_event(kind="describe", op="job", ts=ts, event_id=f"{eid}:job",
                             attrs={"name": job_name, "project": job_ns, "props": kept[("job",)]}))
    datasets: tuple[tuple[str, str, list[Dataset]], ...] = (
        ("inputs", "read", list(ev.inputs or [])), ("outputs", "write", list(ev.outputs or [])))
    for direction, default_op, items in datasets:
        for i, ds in enumerate(items):
            op = default_op
            if direction == "outputs":
                change = _live(ds.facets, "lifecycleStateChange") or {}
                op = _LIFECYCLE.get(str(change.get("lifecycleStateChange")), default_op)
            events += _dataset_events(ds, ts, f"{eid}:{direction}:{i}", op, app, user, _version_of(ds))
            # an output's declared lineage went through this run; an input's was stated for no run of ours
            events += _dataset_lineage(ds, ts, app if direction == "outputs" else None, f"{eid}:{direction}:{i}")
    events += _job_lineage(ev.job.facets, ts, app, eid)
    events += _describe_datasets(kept, ts, eid)
    return Mapped("RunEvent", run_id, events, cut)


def _job_event(ev: JobEvent, ts: int, budget: int) -> Mapped:
    eid = f"openlineage:job:{ev.job.namespace}/{ev.job.name}:{ts}"
    plan = _FacetPlan()
    plan.add(("job",), "job", ev.job.facets, "job.facets")
    for i, inp in enumerate(ev.inputs or []):
        _plan_dataset(plan, inp, f"inputs[{i}]", ("input", inp.inputFacets), also_artifact=True)
    for i, out in enumerate(ev.outputs or []):
        _plan_dataset(plan, out, f"outputs[{i}]", ("output", out.outputFacets), also_artifact=True)
    kept, cut = plan.select(budget)
    props: dict[str, Any] = dict(kept.get(("job",), {}))
    if ev.inputs is not None:
        props[INPUTS_KEY] = [{"namespace": d.namespace, "name": d.name} for d in ev.inputs]
    if ev.outputs is not None:
        props[OUTPUTS_KEY] = [{"namespace": d.namespace, "name": d.name} for d in ev.outputs]
    if cut:
        props[CUT_KEY] = [f"JobEvent {ev.eventTime}: {c}" for c in cut]
    events = [_event(kind="describe", op="job", ts=ts, event_id=f"{eid}:job",
                     attrs={"name": ev.job.name, "project": ev.job.namespace, "props": props})]
    for direction, items in (("inputs", list[Dataset](ev.inputs or [])), ("outputs", list[Dataset](ev.outputs or []))):
        for i, ds in enumerate(items):
            events += _dataset_events(ds, ts, f"{eid}:{direction}:{i}", None, None, None, None)
            events += _dataset_lineage(ds, ts, None, f"{eid}:{direction}:{i}")
    events += _job_lineage(ev.job.facets, ts, None, eid)
    events += _describe_datasets(kept, ts, eid)
    return Mapped("JobEvent", f"job:{ev.job.namespace}/{ev.job.name}", events, cut)


def _dataset_event(ev: DatasetEvent, ts: int, budget: int) -> Mapped:
    ds = ev.dataset
    uri = dataset_uri(ds.namespace, ds.name)
    eid = f"openlineage:dataset:{uri}:{ts}"
    plan = _FacetPlan()
    _plan_dataset(plan, ds, "dataset", None, also_artifact=True)
    kept, cut = plan.select(budget)
    events = _dataset_events(ds, ts, eid, None, None, None, None)
    if cut:
        events.append(_event(kind="describe", op="artifact", uri=uri, ts=ts, event_id=f"{eid}:cut",
                             attrs={"props": {CUT_KEY: [f"DatasetEvent {ev.eventTime}: {c}" for c in cut]}}))
    events += _dataset_lineage(ds, ts, None, eid)
    events += _describe_datasets(kept, ts, eid)
    return Mapped("DatasetEvent", uri, events, cut)
