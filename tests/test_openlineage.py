"""OpenLineage ingestion without a server: validation against the spec (the official client's generated
models as the reference), the mapping to canonical events, what the processor stores (facets on the
nodes they describe, the parent link, declared lineage, the facet budget), and order independence."""

from __future__ import annotations

import copy
import json
import typing
from typing import Any

import attr
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openlineage.client import event_v2
from openlineage.client.generated import (
    base,
    column_lineage_dataset,
    dataset_version_dataset,
    error_message_run,
    lifecycle_state_change_dataset,
    lineage,
    ownership_job,
    parent_run,
    schema_dataset,
)
from openlineage.client.serde import Serde

from provenance.bus.port import Record, raw_topic
from provenance.config import load_settings
from provenance.connectors import openlineage as ol
from provenance.connectors import openlineage_spec as spec
from provenance.errors import EventError
from provenance.graph.model import NEVER, PARENT, app_node, artifact_node, job_node, version_node
from provenance.stack import Stack, open_stack

PRODUCER = "https://github.com/example/pipelines/v1"
RUN, PARENT_RUN = "6a1d0f7e-0f40-4bd5-a7c4-0c1f9d3f5a01", "6a1d0f7e-0f40-4bd5-a7c4-0c1f9d3f5a00"
PG = "postgres://db.example:5432"


def run_event(event_type: str = "START", *, run_id: str = RUN, inputs: Any = (), outputs: Any = (),
              run_facets: dict[str, Any] | None = None, job_facets: dict[str, Any] | None = None,
              time: str = "2026-04-05T10:00:00Z", job: str = "train") -> dict[str, Any]:
    """A RunEvent as the official client serializes it."""
    ev = event_v2.RunEvent(eventType=event_v2.RunState[event_type], eventTime=time, producer=PRODUCER,
                           run=event_v2.Run(runId=run_id, facets=run_facets or {}),
                           job=event_v2.Job(namespace="loan", name=job, facets=job_facets or {}),
                           inputs=list(inputs), outputs=list(outputs))
    return Serde.to_dict(ev)


def table(name: str, version: str | None = None, **facets: Any) -> event_v2.InputDataset:
    if version is not None:
        facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=version)
    return event_v2.InputDataset(namespace=PG, name=name, facets=facets)


def output(name: str, version: str | None = None, **facets: Any) -> event_v2.OutputDataset:
    if version is not None:
        facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=version)
    return event_v2.OutputDataset(namespace=PG, name=name, facets=facets)


def column_lineage(**fields: list[tuple[str, str]]) -> column_lineage_dataset.ColumnLineageDatasetFacet:
    return column_lineage_dataset.ColumnLineageDatasetFacet(fields={
        out: column_lineage_dataset.Fields(inputFields=[
            column_lineage_dataset.InputField(namespace=PG, name=ds, field=f, transformations=[
                column_lineage_dataset.Transformation(type="DIRECT", subtype="IDENTITY")]) for ds, f in ins])
        for out, ins in fields.items()})


# -- validation: the client's models are the reference ------------------------------------------
def _required(cls: type) -> set[str]:
    """The fields a client model cannot be built without (its private base-facet fields aside)."""
    return {f.name for f in attr.fields(cls) if f.default is attr.NOTHING and f.init and not f.name.startswith("_")}


# the spec requires a producer, which the client fills in itself (so it may leave it out of __init__)
PAIRS = [
    (spec.RunEvent, event_v2.RunEvent, {"producer"}), (spec.DatasetEvent, event_v2.DatasetEvent, {"producer"}),
    (spec.JobEvent, event_v2.JobEvent, {"producer"}), (spec.Run, event_v2.Run, set()),
    (spec.Job, event_v2.Job, set()), (spec.Dataset, base.Dataset, set()),
    (spec.InputDataset, event_v2.InputDataset, set()), (spec.OutputDataset, event_v2.OutputDataset, set()),
    (spec.ParentRunFacet, parent_run.ParentRunFacet, set()), (spec.RunRef, parent_run.Run, set()),
    (spec.JobRef, parent_run.Job, set()), (spec.NameRef, lifecycle_state_change_dataset.PreviousIdentifier, set()),
    (spec.ErrorMessageRunFacet, error_message_run.ErrorMessageRunFacet, set()),
    (spec.OwnershipJobFacet, ownership_job.OwnershipJobFacet, set()), (spec.Owner, ownership_job.Owner, set()),
    (spec.DatasetVersionFacet, dataset_version_dataset.DatasetVersionDatasetFacet, set()),
    (spec.LifecycleStateChangeFacet, lifecycle_state_change_dataset.LifecycleStateChangeDatasetFacet, set()),
    (spec.ColumnLineageDatasetFacet, column_lineage_dataset.ColumnLineageDatasetFacet, set()),
    (spec.ColumnFields, column_lineage_dataset.Fields, set()),
    (spec.InputField, column_lineage_dataset.InputField, set()),
    (spec.Transformation, column_lineage_dataset.Transformation, set()),
    (spec.LineageDatasetFacet, lineage.LineageDatasetFacet, set()),
    (spec.LineageJobFacet, lineage.LineageJobFacet, set()),
    (spec.LineageFieldEntry, lineage.LineageFieldEntry, set()),
    (spec.SchemaDatasetFacet, schema_dataset.SchemaDatasetFacet, set()),
    (spec.SchemaField, schema_dataset.SchemaDatasetFacetFields, set()),
]


@pytest.mark.parametrize(("ours", "theirs", "more"), PAIRS, ids=[p[0].__name__ for p in PAIRS])
def test_the_spec_models_require_what_the_clients_models_require(ours: type, theirs: type, more: set[str]) -> None:
    required = {n for n, f in ours.model_fields.items() if f.is_required()}  # type: ignore[attr-defined]
    assert required == _required(theirs) | more
    assert set(ours.model_fields) >= {f.name for f in attr.fields(theirs) if not f.name.startswith("_")}  # type: ignore[attr-defined]


def test_event_types_and_lifecycle_states_are_the_clients() -> None:
    assert set(spec.EVENT_TYPES) == {e.value for e in event_v2.RunState}
    assert set(spec.LIFECYCLE_STATES) == {e.value for e in lifecycle_state_change_dataset.LifecycleStateChange}
    literal = typing.get_args(spec.RunEvent.model_fields["eventType"].annotation)[0]
    assert set(typing.get_args(literal)) == set(spec.EVENT_TYPES)


def _corrupt(path: str, value: Any) -> dict[str, Any]:
    ev = run_event("COMPLETE", inputs=[table("public.applications", "7")], outputs=[output("public.scores")])
    target: Any = ev
    keys = path.split(".")
    for k in keys[:-1]:
        target = target[int(k)] if isinstance(target, list) else target.setdefault(k, {})
    target[keys[-1]] = value
    return ev


BAD = {
    "runId not a UUID": _corrupt("run.runId", "not-a-uuid"),
    "eventType not the spec's": _corrupt("eventType", "EXPLODE"),
    "eventType in lower case": _corrupt("eventType", "start"),
    "eventTime not a time": _corrupt("eventTime", "yesterday"),
    "eventTime without a time": _corrupt("eventTime", "2026-04-05"),
    "eventTime before 1970": _corrupt("eventTime", "0001-01-01T00:00:00Z"),
    "run facets a list": _corrupt("run.facets", ["x"]),
    "ownership a string": _corrupt("job.facets.ownership", "alice"),
    "an output's facets a list": _corrupt("outputs.0.facets", ["schema"]),
    "an output facet a number": _corrupt("outputs.0.outputFacets", {"outputStatistics": 3}),
    "a version facet without its version": _corrupt("inputs.0.facets.version", {"_producer": PRODUCER}),
    "a facet's _producer a number": _corrupt("run.facets.nominalTime", {"_producer": 5}),
    "a parent facet with a bad runId": _corrupt("run.facets.parent", {"run": {"runId": "x"},
                                                                      "job": {"namespace": "a", "name": "b"}}),
    "a lifecycle state not the spec's": _corrupt("outputs.0.facets.lifecycleStateChange",
                                                  {"lifecycleStateChange": "EXPLODE"}),
    "column lineage input without a field": _corrupt("outputs.0.facets.columnLineage",
                                                      {"fields": {"a": {"inputFields": [{"namespace": "n",
                                                                                         "name": "m"}]}}}),
    "an empty dataset name": _corrupt("inputs.0.name", ""),
    "a namespace of another type": _corrupt("job.namespace", 7),
    "inputs an object": _corrupt("inputs", {"namespace": "a", "name": "b"}),
    "no producer": {k: v for k, v in run_event().items() if k != "producer"},
    "no run": {k: v for k, v in run_event().items() if k != "run"},
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_events_against_the_spec_are_refused_with_the_reason(name: str) -> None:
    with pytest.raises(EventError, match="OpenLineage"):
        ol.to_events(BAD[name])


def test_the_events_the_client_builds_are_accepted() -> None:
    run_facets = {"parent": parent_run.ParentRunFacet(run=parent_run.Run(runId=PARENT_RUN),
                                                      job=parent_run.Job(namespace="loan", name="pipeline")),
                  "errorMessage": error_message_run.ErrorMessageRunFacet(message="boom", programmingLanguage="python")}
    job_facets = {"ownership": ownership_job.OwnershipJobFacet(owners=[ownership_job.Owner(name="alice")])}
    ev = run_event("FAIL", run_facets=run_facets, job_facets=job_facets, inputs=[table("public.applications", "7")],
                   outputs=[output("public.scores", "3", columnLineage=column_lineage(score=[
                       ("public.applications", "income")]), schema=schema_dataset.SchemaDatasetFacet(
                       fields=[schema_dataset.SchemaDatasetFacetFields(name="score", type="double")]))])
    mapped = ol.to_events(ev)
    assert mapped.kind == "RunEvent" and mapped.key == RUN and mapped.cut == []
    app = [e for e in mapped.events if e.kind == "app"]
    assert [(e.op, e.app_id, e.user, e.attrs["error"]) for e in app] == [("failed", f"openlineage:{RUN}", "alice",
                                                                            "boom")]
    touches = sorted((e.op, e.uri, e.attrs.get("version")) for e in mapped.events if e.kind == "file")
    assert touches == [("read", "openlineage://postgres/db.example:5432/public.applications", "7"),
                       ("write", "openlineage://postgres/db.example:5432/public.scores", "3")]
    dataset = ol.to_events(Serde.to_dict(event_v2.DatasetEvent(
        eventTime="2026-04-05T10:00:00Z", producer=PRODUCER, dataset=event_v2.StaticDataset(namespace=PG, name="t"))))
    job = ol.to_events(Serde.to_dict(event_v2.JobEvent(eventTime="2026-04-05T10:00:00Z", producer=PRODUCER,
                                                       job=event_v2.Job(namespace="loan", name="nightly"),
                                                       inputs=[table("a")], outputs=[output("b")])))
    assert (dataset.kind, job.kind) == ("DatasetEvent", "JobEvent")
    assert not [e for e in dataset.events + job.events if e.kind in ("file", "app")]  # metadata: no accesses


def test_a_run_id_is_kept_in_its_canonical_form() -> None:
    upper = ol.to_events(run_event(run_id=RUN.upper()))
    assert upper.key == RUN and {e.app_id for e in upper.events if e.app_id} == {f"openlineage:{RUN}"}


def test_dataset_names_make_uris_that_lose_nothing() -> None:
    assert ol.dataset_uri("file", "/data/raw/a b.csv") == "file:///data/raw/a%20b.csv"
    assert ol.dataset_uri("s3://bucket", "k/part#1?x") == "s3://bucket/k/part%231%3Fx"
    assert ol.dataset_uri(PG, "public.t") == "openlineage://postgres/db.example:5432/public.t"
    assert ol.version_key("42") == "42" and ol.version_key("~0") != "~0" and ol.version_key("a/b@c").startswith("h")


def test_the_lineage_facet_becomes_declared_links() -> None:
    facet = lineage.LineageDatasetFacet(
        inputs=[lineage.LineageDatasetInput(namespace=PG, name="public.raw", type="DATASET")],
        fields={"score": lineage.LineageFieldEntry(inputs=[lineage.LineageDatasetInput(
            namespace=PG, name="public.features", type="DATASET", field="f1")])})
    mapped = ol.to_events(run_event("COMPLETE", outputs=[output("public.scores", lineage=facet)]))
    links = sorted((e.uri, e.dst, e.app_id, e.attrs["tier"]) for e in mapped.events if e.kind == "link")
    target = ol.dataset_uri(PG, "public.scores")
    assert links == [(target, ol.dataset_uri(PG, "public.features"), f"openlineage:{RUN}", "declared"),
                     (target, ol.dataset_uri(PG, "public.raw"), f"openlineage:{RUN}", "declared")]
    assert all(e.op == "derived_from" for e in mapped.events if e.kind == "link")
    # stated of a dataset with no run: one link however many events say it
    ds = event_v2.DatasetEvent(eventTime="2026-04-05T10:00:00Z", producer=PRODUCER, dataset=event_v2.StaticDataset(
        namespace=PG, name="public.scores", facets={"lineage": facet}))
    first, again = (ol.to_events(Serde.to_dict(ds)) for _ in range(2))
    assert [e.event_id for e in first.events if e.kind == "link"] == [e.event_id for e in again.events
                                                                      if e.kind == "link"]
    assert all(e.app_id is None for e in first.events if e.kind == "link")
    job_facet = lineage.LineageJobFacet(entries=[lineage.LineageDatasetEntry(
        namespace=PG, name="public.scores", type="DATASET",
        inputs=[lineage.LineageDatasetInput(namespace=PG, name="public.raw", type="DATASET")])])
    job = ol.to_events(Serde.to_dict(event_v2.JobEvent(
        eventTime="2026-04-05T10:00:00Z", producer=PRODUCER,
        job=event_v2.Job(namespace="loan", name="nightly", facets={"lineage": job_facet}))))
    assert [(e.uri, e.dst) for e in job.events if e.kind == "link"] == [(target, ol.dataset_uri(PG, "public.raw"))]


def test_facets_over_the_budget_are_cut_and_named() -> None:
    big = {"_producer": PRODUCER, "_schemaURL": "https://example.org/big", "blob": "x" * 2000}
    ev = run_event(run_facets={"small": {"n": 1}, "big": big})
    mapped = ol.to_events(ev, budget=1000)
    assert len(mapped.cut) == 1 and mapped.cut[0].startswith("run.facets.big (") and "bytes" in mapped.cut[0]
    describe = next(e for e in mapped.events if e.kind == "describe" and e.op == "app")
    assert "facet:run:small" in describe.attrs["props"] and "facet:run:big" not in describe.attrs["props"]
    assert describe.attrs["props"][ol.CUT_KEY] == [f"START 2026-04-05T10:00:00Z: {mapped.cut[0]}"]


# -- what the processor stores ---------------------------------------------------------------
@pytest.fixture(params=["embedded", "neo4j"])
def ol_stack(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    """A stack on the embedded store and on the Neo4j adapter (ArcadeDB's Bolt server), as ``loan`` does."""
    with open_stack(load_settings(home=tmp_path / "home")) as s:
        if request.param == "neo4j":
            s.store.close()
            s.store = request.getfixturevalue("neo4j_store")
        yield s


def ingest(stack: Stack, events: list[dict[str, Any]]) -> None:
    stack.bus.produce(raw_topic("openlineage"), [Record(value=json.dumps(e).encode(), key=None) for e in events])
    stats = stack.processor.catch_up()
    assert stats.dead_lettered == 0, stats.errors


def child_history() -> list[dict[str, Any]]:
    parent = {"parent": parent_run.ParentRunFacet(run=parent_run.Run(runId=PARENT_RUN),
                                                  job=parent_run.Job(namespace="loan", name="pipeline"))}
    ins = [table("public.applications", "7", schema=schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name="income", type="int")]))]
    outs = [output("public.scores", "3", columnLineage=column_lineage(score=[("public.applications", "income")]))]
    return [run_event("START", run_facets=parent, inputs=ins,
                      job_facets={"documentation": {"_producer": PRODUCER, "_schemaURL": "x", "description": "d"}}),
            run_event("COMPLETE", run_facets=parent, inputs=ins, outputs=outs, time="2026-04-05T10:05:00Z"),
            run_event("OTHER", run_facets={"late": {"n": 1}}, time="2026-04-05T10:09:00Z")]


def test_facets_land_on_the_nodes_they_describe(ol_stack: Stack) -> None:
    ingest(ol_stack, child_history())
    store = ol_stack.store
    app = store.nodes([app_node(f"openlineage:{RUN}")])[app_node(f"openlineage:{RUN}")]
    assert app.props["state"] == "finished"  # the OTHER after COMPLETE changed no state
    assert app.props["facet:run:parent"]["run"]["runId"] == PARENT_RUN and app.props["facet:run:late"]["n"] == 1
    job = store.nodes([job_node("loan/train")])[job_node("loan/train")]
    assert job.props["facet:job:documentation"]["description"] == "d"
    inp = ol.dataset_uri(PG, "public.applications")
    out = ol.dataset_uri(PG, "public.scores")
    versions = store.nodes([version_node(inp, "7"), version_node(out, "3"), artifact_node(inp)])
    assert versions[version_node(inp, "7")].props["facet:dataset:schema"]["fields"][0]["name"] == "income"
    assert versions[version_node(out, "3")].props["facet:dataset:columnLineage"]["fields"]["score"]["inputFields"] == [
        {"namespace": PG, "name": "public.applications", "field": "income",
         "transformations": [{"type": "DIRECT", "subtype": "IDENTITY"}]}]
    assert versions[artifact_node(inp)].props[ol.NAMESPACE_KEY] == PG
    assert [e.dst for e in store.edges_from([app.id], [PARENT])] == [app_node(f"openlineage:{PARENT_RUN}")]
    parent_job = store.edges_from([app_node(f"openlineage:{PARENT_RUN}")], ["INSTANCE_OF"])
    assert [e.dst for e in parent_job] == [job_node("loan/pipeline")]


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(order=st.permutations(range(3)), dup=st.lists(st.integers(0, 2), max_size=2))
def test_any_order_and_duplication_of_a_runs_events_gives_one_graph(order: list[int], dup: list[int]) -> None:
    import tempfile
    from pathlib import Path

    history = child_history()
    dumps = []
    for events in (history, [copy.deepcopy(history[i]) for i in [*order, *dup]]):
        with tempfile.TemporaryDirectory() as d, open_stack(load_settings(home=Path(d) / "home")) as s:
            ingest(s, events)
            dump = s.store.dump()
            dumps.append({k: v for k, v in dump.items() if k != "offsets"})
    assert dumps[0] == dumps[1]


def test_a_job_event_declares_inputs_and_outputs_and_a_dataset_event_describes_its_dataset(ol_stack: Stack) -> None:
    job = Serde.to_dict(event_v2.JobEvent(eventTime="2026-04-05T10:00:00Z", producer=PRODUCER, job=event_v2.Job(
        namespace="loan", name="nightly", facets={"documentation": {"description": "nightly scores"}}),
        inputs=[table("public.applications")], outputs=[output("public.scores")]))
    version = dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion="9")
    dataset = Serde.to_dict(event_v2.DatasetEvent(
        eventTime="2026-04-05T11:00:00Z", producer=PRODUCER,
        dataset=event_v2.StaticDataset(namespace=PG, name="public.scores", facets={"version": version})))
    ingest(ol_stack, [job, dataset])
    nodes = ol_stack.store.nodes([job_node("loan/nightly"), artifact_node(ol.dataset_uri(PG, "public.scores"))])
    jp = nodes[job_node("loan/nightly")].props
    assert jp[ol.INPUTS_KEY] == [{"namespace": PG, "name": "public.applications"}]
    assert jp["facet:job:documentation"]["description"] == "nightly scores"
    art = nodes[artifact_node(ol.dataset_uri(PG, "public.scores"))].props
    assert art["facet:dataset:version"]["datasetVersion"] == "9"  # metadata with no run: on the artifact too
    assert ol_stack.store.find_nodes("app", as_of=NEVER)[1] == 0  # and nobody ran anything

