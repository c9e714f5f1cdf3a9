"""OpenLineage over HTTP (TestClient): POST /api/v1/lineage refuses what the spec refuses with the one
error body and never answers 5xx (a Hypothesis test over events built by the official client and
corrupted), accepts the three event types, bounds stored facets; the Marquez routes with namespaces
and node ids that hold ``/`` and ``:``; the column lineage and the facets in the API's answers."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openlineage.client import event_v2
from openlineage.client.generated import (
    column_lineage_dataset,
    dataset_version_dataset,
    documentation_dataset,
    documentation_job,
    lifecycle_state_change_dataset,
    lineage,
    nominal_time_run,
    ownership_job,
    parent_run,
    schema_dataset,
    source_code_location_job,
    symlinks_dataset,
)
from openlineage.client.serde import Serde

from provenance.access import AccessStore
from provenance.api.app import create_app
from provenance.config import load_settings
from provenance.connectors.openlineage import dataset_uri
from tests.test_api import assert_error, auth
from tests.test_openlineage import BAD, PG, PRODUCER, column_lineage, output, run_event, table

RUN = "0b6e3a5c-51e2-4b7c-9d0e-5b1f2a3c4d01"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("olapi") / "home"
    access = AccessStore(home / "access.db")
    tokens = {name: access.create_token(name, admin=admin, projects=projects)[1]
              for name, admin, projects in (("root", True, ()), ("alice", False, ("loan",)),
                                            ("eve", False, ("other",)))}
    access.close()
    app = create_app(load_settings(home=home, server={"allowed_hosts": ["testserver"]}))
    with TestClient(app) as client:
        yield {"c": client, "app": app, **{k: auth(v) for k, v in tokens.items()}}


def post(api: dict[str, Any], event: Any, **kw: Any) -> Any:
    return api["c"].post("/api/v1/lineage", json=event, headers=api["root"], **kw)


# -- refusals --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(BAD))
def test_events_against_the_spec_get_422_with_the_error_body(api: dict[str, Any], name: str) -> None:
    err = assert_error(post(api, BAD[name]), 422, "invalid_event")
    assert err["message"].startswith("OpenLineage")


def test_not_json_not_an_object_and_not_allowed(api: dict[str, Any]) -> None:
    c = api["c"]
    json_type = {**api["root"], "content-type": "application/json"}
    assert_error(c.post("/api/v1/lineage", content=b"{nope", headers=json_type), 422, "invalid_event")
    assert_error(post(api, [run_event()]), 422, "invalid_event")
    assert_error(c.post("/api/v1/lineage", json=run_event(), headers=api["alice"]), 403, "forbidden")
    assert_error(c.post("/api/v1/lineage", content=json.dumps(run_event()),
                        headers={**api["root"], "content-type": "text/plain"}), 400, "bad_query")
    assert_error(c.post("/api/v1/lineage", content=b"\x1f\x8bnot gzip",
                        headers={**api["root"], "content-type": "application/json", "content-encoding": "gzip"}),
                 422, "invalid_event")


def test_a_gzip_body_as_the_client_compresses_it(api: dict[str, Any]) -> None:
    body = gzip.compress(json.dumps(run_event(run_id=RUN)).encode())
    r = api["c"].post("/api/v1/lineage", content=body, headers={**api["root"], "content-type": "application/json",
                                                                 "content-encoding": "gzip"})
    assert r.status_code == 201 and r.json()["type"] == "RunEvent"


def test_dataset_and_job_events_are_accepted(api: dict[str, Any]) -> None:
    ds = Serde.to_dict(event_v2.DatasetEvent(
        eventTime="2026-04-05T09:00:00Z", producer=PRODUCER,
        dataset=event_v2.StaticDataset(namespace=PG, name="public.documented", facets={
            "schema": schema_dataset.SchemaDatasetFacet(fields=[schema_dataset.SchemaDatasetFacetFields(
                name="id", type="bigint")])})))
    job = Serde.to_dict(event_v2.JobEvent(
        eventTime="2026-04-05T09:00:00Z", producer=PRODUCER,
        job=event_v2.Job(namespace="loan", name="declared_job", facets={
            "documentation": documentation_job.DocumentationJobFacet(description="loads the table")}),
        inputs=[table("public.documented")], outputs=[output("public.declared_out")]))
    assert [post(api, e).json()["type"] for e in (ds, job)] == ["DatasetEvent", "JobEvent"]
    c, root = api["c"], api["root"]
    d = c.get(f"/api/v1/namespaces/{_enc(PG)}/datasets/public.documented", headers=root).json()
    assert d["fields"] == [{"name": "id", "type": "bigint", "tags": [], "description": None}]
    j = c.get("/api/v1/namespaces/loan/jobs/declared_job", headers=root).json()
    assert j["description"] == "loads the table" and j["latestRun"] is None
    assert j["inputs"] == [{"namespace": PG, "name": "public.documented"}]
    assert j["outputs"] == [{"namespace": PG, "name": "public.declared_out"}]


def test_facets_over_the_budget_are_not_stored_and_the_answer_says_so(api: dict[str, Any]) -> None:
    run = "0b6e3a5c-51e2-4b7c-9d0e-5b1f2a3c4d02"
    huge = {"_producer": PRODUCER, "_schemaURL": "https://example.org/huge", "plan": "x" * 300_000}
    r = post(api, run_event(run_id=run, run_facets={"spark.logicalPlan": huge,
                                                    "nominalTime": nominal_time_run.NominalTimeRunFacet(
                                                        nominalStartTime="2026-04-05T10:00:00Z")}))
    assert r.status_code == 201
    assert len(r.json()["cut"]) == 1 and r.json()["cut"][0] == "run.facets.spark.logicalPlan (300105 bytes)"
    app = api["c"].get(f"/api/apps/openlineage:{run}", headers=api["root"]).json()
    assert "facet:run:nominalTime" in app["props"] and "facet:run:spark.logicalPlan" not in app["props"]
    assert app["props"]["openlineage.cut"] == [f"START 2026-04-05T10:00:00Z: {r.json()['cut'][0]}"]


@pytest.mark.parametrize("deep", [16, 300, 5000])
def test_a_facet_nested_too_deep_is_cut_not_the_event(api: dict[str, Any], deep: int) -> None:
    """A facet nested deeper than the store keeps is named as cut, like an oversized one; the run and its
    other facets are stored (16 levels of {"a": [...]} nest 32 deep; 300 is past orjson's own limit)."""
    run = str(uuid.UUID(int=deep))
    value = '{"a": [' * deep + "1" + "]}" * deep  # as text: Python's own json module stops at ~1000 levels
    nominal = nominal_time_run.NominalTimeRunFacet(nominalStartTime="2026-04-05T10:00:00Z")
    event = json.loads(Serde.to_json(run_event(run_id=run, run_facets={"nominalTime": nominal})))
    event["run"]["facets"]["deep"] = {"_producer": PRODUCER, "_schemaURL": "https://example.org/deep", "v": "DEEP"}
    r = api["c"].post("/api/v1/lineage", content=json.dumps(event).replace('"DEEP"', value).encode(),
                      headers={**api["root"], "content-type": "application/json"})
    assert r.status_code == 201, r.text
    assert r.json()["cut"] == ["run.facets.deep (nested more than 28 deep)"]
    app = api["c"].get(f"/api/apps/openlineage:{run}", headers=api["root"]).json()
    assert "facet:run:nominalTime" in app["props"] and "facet:run:deep" not in app["props"]


# -- no 5xx, whatever comes --------------------------------------------------------------------------
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10)
_FACET = st.dictionaries(st.text(max_size=8).filter(lambda k: not k.startswith("_")), _JSON, max_size=4)


def _client_events() -> list[dict[str, Any]]:
    """Events as the official client builds them, with the facets of its generated models."""
    parent = parent_run.ParentRunFacet(run=parent_run.Run(runId="0b6e3a5c-51e2-4b7c-9d0e-5b1f2a3c4d03"),
                                       job=parent_run.Job(namespace="loan", name="dag"))
    job_facets = {"sourceCodeLocation": source_code_location_job.SourceCodeLocationJobFacet(type="git",
                                                                                           url="https://git/x"),
                  "ownership": ownership_job.OwnershipJobFacet(owners=[ownership_job.Owner(name="alice")])}
    lineage_facet = lineage.LineageDatasetFacet(inputs=[lineage.LineageDatasetInput(namespace=PG, name="public.raw",
                                                                                    type="DATASET")])
    outs = [output("public.out", "5", columnLineage=column_lineage(score=[("public.in", "income")]),
                   lineage=lineage_facet, lifecycleStateChange=lifecycle_state_change_dataset.
                   LifecycleStateChangeDatasetFacet(lifecycleStateChange=lifecycle_state_change_dataset.
                                                    LifecycleStateChange.CREATE))]
    return [
        run_event("COMPLETE", run_id="0b6e3a5c-51e2-4b7c-9d0e-5b1f2a3c4d04", run_facets={"parent": parent},
                  job_facets=job_facets, inputs=[table("public.in", "4")], outputs=outs),
        Serde.to_dict(event_v2.DatasetEvent(eventTime="2026-04-05T10:00:00Z", producer=PRODUCER,
                                            dataset=event_v2.StaticDataset(namespace=PG, name="public.in", facets={
                                                "version": dataset_version_dataset.DatasetVersionDatasetFacet(
                                                    datasetVersion="4")}))),
        Serde.to_dict(event_v2.JobEvent(eventTime="2026-04-05T10:00:00Z", producer=PRODUCER,
                                        job=event_v2.Job(namespace="loan", name="j", facets=job_facets),
                                        inputs=[table("public.in")], outputs=outs)),
    ]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _replace(event: Any, path: tuple[Any, ...], value: Any) -> None:
    target = event
    for p in path[:-1]:
        target = target[p]
    target[path[-1]] = value


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_any_event_gets_201_or_a_4xx_with_the_error_body_never_a_5xx(api: dict[str, Any], data: st.DataObject) -> None:
    event = json.loads(json.dumps(data.draw(st.sampled_from(_client_events()))))
    for _ in range(data.draw(st.integers(0, 3))):  # corruptions: any value anywhere, or a facet of any JSON type
        paths = _paths(event)
        if data.draw(st.booleans()) and paths:
            _replace(event, data.draw(st.sampled_from(paths)), data.draw(_JSON))
        else:
            holders = [p for p in paths if p and p[-1] in ("facets", "inputFacets", "outputFacets")
                       and isinstance(_get(event, p), dict)]
            if holders:  # a facet: mostly an object with fields of every JSON type, else a value of any type
                facet = data.draw(st.one_of(_FACET, _FACET, _JSON))
                _get(event, data.draw(st.sampled_from(holders)))[data.draw(st.text(max_size=10))] = facet
    r = api["c"].post("/api/v1/lineage", content=json.dumps(event), headers={**api["root"],
                                                                           "content-type": "application/json"})
    STATUSES[r.status_code] = STATUSES.get(r.status_code, 0) + 1
    if r.status_code != 201:
        assert 400 <= r.status_code < 500, r.text
        body = r.json()
        assert set(body) == {"error"} and body["error"]["status"] == r.status_code and body["error"]["message"]


STATUSES: dict[int, int] = {}


def _get(event: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        event = event[p]
    return event


def test_the_generated_events_were_both_accepted_and_refused() -> None:
    """A test of the test: the generator above reaches the mapping (201s), not only the validation."""
    if not STATUSES:
        pytest.skip("the Hypothesis test above did not run in this session (deselected)")
    assert STATUSES.get(201, 0) >= 10 and sum(n for s, n in STATUSES.items() if 400 <= s < 500) >= 10, STATUSES


def test_every_accepted_event_is_applied_none_is_dead_lettered(api: dict[str, Any]) -> None:
    """Runs after the fuzzing above (same module): what the API accepted, the processor could use."""
    for e in _client_events():
        assert post(api, e).status_code == 201
    svc = api["app"].state.api.service
    assert svc.dead_letters() == []


# -- reading facets and lineage back ---------------------------------------------------------------
@pytest.fixture(scope="module")
def scored(api: dict[str, Any]) -> dict[str, Any]:
    """A loan run that reads an input a loan run wrote and writes a versioned output with column lineage."""
    producer_run, run = "0b6e3a5c-51e2-4b7c-9d0e-5b1f2a3c4d10", "0b6e3a5c-51e2-4b7c-9d0e-5b1f2a3c4d11"
    ins = [table("public.applications", "7", schema=schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name="income", type="int")]))]
    outs = [output("scores/2026:04", "v/3@x", columnLineage=column_lineage(score=[("public.applications",
                                                                                 "income")]))]
    events = [run_event("START", run_id=producer_run, job="ingest"),
              run_event("COMPLETE", run_id=producer_run, job="ingest", outputs=[output("public.applications", "7")],
                        time="2026-04-05T09:59:00Z"),
              run_event("START", run_id=run, inputs=ins, time="2026-04-05T10:00:00Z"),
              run_event("COMPLETE", run_id=run, inputs=ins, outputs=outs, time="2026-04-05T10:01:00Z")]
    for e in events:
        assert post(api, e).status_code == 201
    return {"run": run, "out": dataset_uri(PG, "scores/2026:04"), "in": dataset_uri(PG, "public.applications")}


def _enc(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def test_facets_come_back_on_apps_and_artifact_versions(api: dict[str, Any], scored: dict[str, Any]) -> None:
    c, root = api["c"], api["root"]
    art = c.get("/api/artifacts", params={"uri": scored["out"]}, headers=root).json()
    (version,) = art["versions"]
    assert version["facets"]["facet:dataset:version"]["datasetVersion"] == "v/3@x"  # kept as sent
    assert version["facets"]["facet:dataset:columnLineage"]["fields"]["score"]["inputFields"][0]["field"] == "income"
    assert art["props"]["openlineage.namespace"] == PG and art["props"]["openlineage.name"] == "scores/2026:04"
    cl = c.get("/api/column-lineage", params={"uri": scored["out"]}, headers=root).json()
    assert (cl["namespace"], cl["name"], cl["version"]) == (PG, "scores/2026:04", "v/3@x")
    assert [(f["name"], [(i["namespace"], i["name"], i["field"], i["uri"]) for i in f["inputs"]])
            for f in cl["fields"]] == [("score", [(PG, "public.applications", "income", scored["in"])])]
    assert_error(c.get("/api/column-lineage", params={"uri": scored["out"]}, headers=api["eve"]), 404, "not_found")


def test_marquez_routes_take_encoded_namespaces_and_names(api: dict[str, Any], scored: dict[str, Any]) -> None:
    c, root = api["c"], api["root"]
    d = c.get(f"/api/v1/namespaces/{_enc(PG)}/datasets/{_enc('scores/2026:04')}", headers=root).json()
    assert d["id"] == {"namespace": PG, "name": "scores/2026:04"} and d["currentVersion"] == "v/3@x"
    assert d["columnLineage"] == [{"name": "score", "inputFields": [
        {"namespace": PG, "dataset": "public.applications", "field": "income", "transformationDescription": None,
         "transformationType": "DIRECT"}], "transformationDescription": None, "transformationType": None}]
    versions = c.get(f"/api/v1/namespaces/{_enc(PG)}/datasets/{_enc('scores/2026:04')}/versions", headers=root).json()
    assert [v["version"] for v in versions["versions"]] == ["v/3@x"]
    assert versions["versions"][0]["createdByRun"]["id"] == scored["run"]
    # a node id's ':'s: the namespace's own, the port's and the name's are told apart by trying each split
    g = c.get("/api/v1/lineage", params={"nodeId": f"dataset:{PG}:scores/2026:04", "depth": 1}, headers=root).json()
    ids = {n["id"] for n in g["graph"]}
    assert {f"dataset:{PG}:scores/2026:04", "job:loan:train", f"dataset:{PG}:public.applications"} <= ids
    assert "job:loan:ingest" not in ids  # two jobs away
    deeper = c.get("/api/v1/lineage", params={"nodeId": f"dataset:{PG}:scores/2026:04"}, headers=root).json()
    assert "job:loan:ingest" in {n["id"] for n in deeper["graph"]}
    assert_error(c.get("/api/v1/lineage", params={"nodeId": "dataset:nope:nothing"}, headers=root), 404, "not_found")
    assert_error(c.get("/api/v1/lineage", params={"nodeId": "table:x:y"}, headers=root), 400, "bad_query")


def test_an_export_of_an_openlineage_run_keeps_its_names(api: dict[str, Any], scored: dict[str, Any]) -> None:
    events = api["c"].get("/api/export/openlineage", params={"app": f"openlineage:{scored['run']}"},
                          headers=api["root"]).json()["events"]
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    assert {e["run"]["runId"] for e in events} == {scored["run"]}
    assert {(e["job"]["namespace"], e["job"]["name"]) for e in events} == {("loan", "train")}
    assert {e["producer"] for e in events} == {PRODUCER}  # the producer that sent the run
    done = events[1]
    assert [(d["namespace"], d["name"], d["facets"]["version"]["datasetVersion"]) for d in done["outputs"]] == [
        (PG, "scores/2026:04", "v/3@x")]
    assert [(d["namespace"], d["name"], d["facets"]["version"]["datasetVersion"]) for d in done["inputs"]] == [
        (PG, "public.applications", "7")]
    # and the client's own model reads them back
    for e in events:
        event_v2.RunEvent(eventType=event_v2.RunState[e["eventType"]], eventTime=e["eventTime"],
                          run=event_v2.Run(runId=e["run"]["runId"]), job=event_v2.Job(**{k: e["job"][k] for k in
                                                                                          ("namespace", "name")}),
                          producer=e["producer"])



def test_an_export_of_a_run_captured_otherwise_and_of_files_inside_artifacts(api: dict[str, Any]) -> None:
    import uuid

    c, root = api["c"], api["root"]
    captured = [
        {"source": "launcher", "kind": "app", "op": "started", "ts": 1775000000000, "app_id": "app-42",
         "attrs": {"name": "train", "project": "loan"}},
        {"source": "launcher", "kind": "file", "op": "read", "ts": 1775000001000, "app_id": "app-42",
         "uri": "/Projects/loan/Raw/applications.csv"},
        {"source": "launcher", "kind": "file", "op": "create", "ts": 1775000002000, "app_id": "app-42",
         "uri": "/Projects/loan/Models/loan_model/2/model.pkl"},
        {"source": "launcher", "kind": "app", "op": "finished", "ts": 1775000003000, "app_id": "app-42"}]
    assert c.post("/api/events", json=captured, headers=root).status_code == 202
    events = c.get("/api/export/openlineage", params={"app": "app-42"}, headers=root).json()["events"]
    assert {e["run"]["runId"] for e in events} == {str(uuid.uuid5(uuid.NAMESPACE_URL, "provenance:app:app-42"))}
    assert {(e["job"]["namespace"], e["job"]["name"]) for e in events} == {("loan", "train")}
    done = events[-1]
    assert [(d["namespace"], d["name"], d["facets"]) for d in done["inputs"]] == [
        ("file", "/Projects/loan/Raw/applications.csv", {})]  # its version is this graph's label: none sent
    assert [(d["namespace"], d["name"], d["facets"]["version"]["datasetVersion"]) for d in done["outputs"]] == [
        ("file", "/Projects/loan/Models/loan_model", "2")]  # the artifact, at the version its path names
    # an OpenLineage run that names a file inside an artifact gets the file back, as it named it
    run = "0b6e3a5c-51e2-4b7c-9d0e-5b1f2a3c4d20"
    model = event_v2.OutputDataset(namespace="file", name="/Projects/loan/Models/loan_model/3/model.pkl")
    assert post(api, run_event("COMPLETE", run_id=run, outputs=[model])).status_code == 201
    events = c.get("/api/export/openlineage", params={"app": f"openlineage:{run}"}, headers=root).json()["events"]
    assert [(d["namespace"], d["name"], d["facets"]["version"]["datasetVersion"]) for d in events[-1]["outputs"]] == [
        ("file", "/Projects/loan/Models/loan_model/3/model.pkl", "3")]


def test_a_dataset_of_another_project_made_from_hidden_columns(api: dict[str, Any], scored: dict[str, Any]) -> None:
    """Project `other` derives a table from the loan project's: its member sees the table, its column lineage
    with the loan input as a placeholder, and a lineage graph that stops where the loan project begins."""
    run = "0b6e3a5c-51e2-4b7c-9d0e-5b1f2a3c4d30"
    ev = run_event("COMPLETE", run_id=run, job="copy", inputs=[table("public.applications", "7")],
                   outputs=[output("other.copy", "1", columnLineage=column_lineage(
                       income=[("public.applications", "income")]))])
    ev["job"]["namespace"] = "other"
    assert post(api, ev).status_code == 201
    c, eve, alice = api["c"], api["eve"], api["alice"]
    mine = dataset_uri(PG, "other.copy")
    cl = c.get("/api/column-lineage", params={"uri": mine}, headers=eve).json()
    (field,) = cl["fields"]
    assert field["inputs"][0]["redacted"] and field["inputs"][0]["namespace"] == "redacted" and cl["redacted"] == 1
    assert "public.applications" not in json.dumps(cl)
    d = c.get(f"/api/v1/namespaces/{_enc(PG)}/datasets/other.copy", headers=eve).json()
    assert d["columnLineage"] == [{"name": "income", "inputFields": [], "transformationDescription": None,
                                   "transformationType": None}]
    g = c.get("/api/v1/lineage", params={"nodeId": f"dataset:{PG}:other.copy"}, headers=eve).json()
    assert {n["id"] for n in g["graph"]} == {f"dataset:{PG}:other.copy", "job:other:copy"}
    assert "loan" not in json.dumps(g) and "public.applications" not in json.dumps(g)
    names = {n["name"] for n in c.get("/api/v1/namespaces", headers=eve).json()["namespaces"]}
    assert names == {"other", PG}
    listed = {x["name"] for x in c.get(f"/api/v1/namespaces/{_enc(PG)}/datasets", headers=eve).json()["datasets"]}
    assert "other.copy" in listed and not listed & {"public.applications", "scores/2026:04"}  # loan's
    art = c.get("/api/artifacts", params={"uri": mine}, headers=eve).json()
    assert art["versions"][0]["facets"]["facet:dataset:columnLineage"]["fields"]["income"]["inputFields"] == []
    assert "public.applications" not in json.dumps(art)
    # and the loan project's member does not see project other's table
    assert_error(c.get(f"/api/v1/namespaces/{_enc(PG)}/datasets/other.copy", headers=alice), 404, "not_found")


def test_what_a_visible_run_says_of_hidden_data_is_hidden_too(api: dict[str, Any]) -> None:
    """A run of project `other` started by a loan run (parent facet), whose output's column lineage names a loan
    table and a loan file never seen as a dataset, and whose symlinks facet names a loan table: its member sees
    the run and its output, and none of those names, in the run, the user, the artifact, its column lineage and
    the OpenLineage export."""
    parent, child = "0b6e3a5c-51e2-4b7c-9d0e-5b1f2a3c4d41", "0b6e3a5c-51e2-4b7c-9d0e-5b1f2a3c4d42"
    assert post(api, run_event("COMPLETE", run_id=parent, job="secretjob_loanx",
                               outputs=[output("public.loanx_scores", "1")])).status_code == 201
    cl = column_lineage(ssn=[("public.loanx_scores", "loanx_field")])
    cl.fields["ssn"].inputFields.append(column_lineage_dataset.InputField(
        namespace="file", name="/Projects/loan/loanx_ghost.csv", field="loanx_ghostfield", transformations=[]))
    links = symlinks_dataset.SymlinksDatasetFacet(identifiers=[symlinks_dataset.Identifier(
        namespace=PG, name="public.loanx_scores", type="TABLE")])
    ev = run_event("COMPLETE", run_id=child, job="child", run_facets={"parent": parent_run.ParentRunFacet(
        run=parent_run.Run(runId=parent), job=parent_run.Job(namespace="loan", name="secretjob_loanx"))},
        outputs=[output("other.out2", "1", columnLineage=cl, symlinks=links)])
    ev["job"]["namespace"] = "other"
    assert post(api, ev).status_code == 201
    c, eve = api["c"], api["eve"]
    mine = dataset_uri(PG, "other.out2")
    answers = {
        "app": c.get(f"/api/apps/openlineage:{child}", headers=eve),
        "apps": c.get("/api/apps", params={"name": "other/child"}, headers=eve),
        "artifact": c.get("/api/artifacts", params={"uri": mine}, headers=eve),
        "column lineage": c.get("/api/column-lineage", params={"uri": mine}, headers=eve),
        "export": c.get("/api/export/openlineage", params={"app": f"openlineage:{child}"}, headers=eve),
        "marquez dataset": c.get(f"/api/v1/namespaces/{_enc(PG)}/datasets/other.out2", headers=eve),
    }
    for name, r in answers.items():
        assert r.status_code == 200, (name, r.text)
        assert "loanx" not in r.text.lower(), (name, r.text)
    assert answers["app"].json()["parent"]["redacted"] is True
    assert answers["apps"].json()["apps"][0]["parent"]["redacted"] is True
    # the loan project's member and the admin see the names
    assert "secretjob_loanx" in c.get(f"/api/apps/openlineage:{child}", headers=api["root"]).text
    assert "loanx_ghostfield" in c.get("/api/column-lineage", params={"uri": mine}, headers=api["root"]).text


def test_node_ids_are_read_as_marquez_reads_them_and_within_bounds() -> None:
    from provenance.marquez import node_id_splits

    assert node_id_splits("dataset:postgres://db:5432:public.t", 2)[0] == ["dataset", "postgres://db:5432", "public.t"]
    assert node_id_splits("job:loan:train", 2) == [["job", "loan", "train"]]
    assert node_id_splits("datasetField:s3://b:k/x:col", 3)[0] == ["datasetField", "s3://b", "k/x", "col"]
    assert node_id_splits("dataset:nothing", 2) == [] and node_id_splits("dataset", 2) == []
    assert len(node_id_splits("dataset:" + "a:1" * 3000, 3)) == 16  # looked up one by one: never thousands


# -- Marquez's answers as Marquez gives them ----------------------------------------------------------
def _parent(run_id: str, job: str) -> parent_run.ParentRunFacet:
    return parent_run.ParentRunFacet(run=parent_run.Run(runId=run_id), job=parent_run.Job(namespace="loan", name=job))


def test_run_states_as_marquez_maps_event_types(api: dict[str, Any]) -> None:
    """RUNNING and OTHER make a run RUNNING (Marquez's getRunState); a parent that sent no event of its
    own takes its child's state."""
    c, root = api["c"], api["root"]
    running, other, dag = ("0b6e3a5c-51e2-4b7c-9d0e-5b1f2a3c4e01", "0b6e3a5c-51e2-4b7c-9d0e-5b1f2a3c4e02",
                           "0b6e3a5c-51e2-4b7c-9d0e-5b1f2a3c4e03")
    assert post(api, run_event("RUNNING", run_id=running, job="states_running")).status_code == 201
    assert post(api, run_event("OTHER", run_id=other, job="states_other",
                               run_facets={"parent": _parent(dag, "states_dag")})).status_code == 201
    for run_id in (running, other, dag):
        r = c.get(f"/api/v1/runs/{run_id}", headers=root).json()
        assert r["state"] == "RUNNING" and r["startedAt"] is not None, (run_id, r)
    assert c.get(f"/api/v1/runs/{dag}", headers=api["eve"]).status_code == 404


def test_simple_name_parent_job_and_the_datasets_of_the_last_completed_run(api: dict[str, Any]) -> None:
    c, root = api["c"], api["root"]
    dag, task, later = ("0b6e3a5c-51e2-4b7c-9d0e-5b1f2a3c4e11", "0b6e3a5c-51e2-4b7c-9d0e-5b1f2a3c4e12",
                        "0b6e3a5c-51e2-4b7c-9d0e-5b1f2a3c4e13")
    facets = {"parent": _parent(dag, "dag.group")}
    events = [run_event("START", run_id=dag, job="dag.group", time="2026-04-06T10:00:00Z"),
              run_event("START", run_id=task, job="dag.group.task", run_facets=facets, time="2026-04-06T10:00:01Z",
                        inputs=[table("public.task_in")]),
              run_event("COMPLETE", run_id=task, job="dag.group.task", run_facets=facets,
                        time="2026-04-06T10:01:00Z", inputs=[table("public.task_in")],
                        outputs=[output("public.task_out")]),
              run_event("START", run_id=later, job="dag.group.task", run_facets=facets, time="2026-04-06T11:00:00Z")]
    for e in events:
        assert post(api, e).status_code == 201
    j = c.get("/api/v1/namespaces/loan/jobs/dag.group.task", headers=root).json()
    assert (j["name"], j["simpleName"], j["parentJobName"]) == ("dag.group.task", "task", "dag.group")
    import uuid

    assert j["parentJobUuid"] == str(uuid.uuid5(uuid.NAMESPACE_URL, "provenance:job:loan/dag.group"))
    assert j["latestRun"]["id"] == later and j["latestRun"]["state"] == "RUNNING"
    # the datasets of the newest completed run, not of the newer unfinished one that has none
    assert j["inputs"] == [{"namespace": PG, "name": "public.task_in"}]
    assert j["outputs"] == [{"namespace": PG, "name": "public.task_out"}]
    g = c.get("/api/v1/lineage", params={"nodeId": "job:loan:dag.group.task", "depth": 1}, headers=root).json()
    node = next(n for n in g["graph"] if n["id"] == "job:loan:dag.group.task")
    assert node["data"]["simpleName"] == "task" and node["data"]["parentJobUuid"] == j["parentJobUuid"]
    parent = c.get("/api/v1/namespaces/loan/jobs/dag.group", headers=root).json()
    assert parent["simpleName"] == "dag.group" and parent["parentJobName"] is None


def test_column_lineage_downstream_from_a_source_by_dataset_field_and_job(api: dict[str, Any]) -> None:
    c, root = api["c"], api["root"]
    run = "0b6e3a5c-51e2-4b7c-9d0e-5b1f2a3c4e21"
    src = table("public.cl_source", "1", schema=schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name=n, type="int") for n in ("a", "b")]))
    out = output("public.cl_target", "1", columnLineage=column_lineage(total=[("public.cl_source", "a")]))
    assert post(api, run_event("COMPLETE", run_id=run, job="cl_job", inputs=[src], outputs=[out])).status_code == 201
    source_a, target = f"datasetField:{PG}:public.cl_source:a", f"datasetField:{PG}:public.cl_target:total"
    for node_id in (f"dataset:{PG}:public.cl_source", source_a):
        g = c.get("/api/v1/column-lineage", params={"nodeId": node_id, "withDownstream": "true"}, headers=root).json()
        nodes = {n["id"]: n for n in g["graph"]}
        assert {source_a, target} <= set(nodes), (node_id, sorted(nodes))
        assert [e["destination"] for e in nodes[source_a]["outEdges"]] == [target]
        assert [e["destination"] for e in nodes[target]["inEdges"]] == [source_a]
        assert nodes[source_a]["data"]["fieldType"] == "int"
    # b feeds nothing: downstream of it is b alone
    g = c.get("/api/v1/column-lineage", params={"nodeId": f"datasetField:{PG}:public.cl_source:b",
                                                "withDownstream": "true"}, headers=root).json()
    assert [n["id"] for n in g["graph"]] == [f"datasetField:{PG}:public.cl_source:b"]
    # the same transformation in the graph as in the dataset's columnLineage
    d = c.get(f"/api/v1/namespaces/{_enc(PG)}/datasets/public.cl_target", headers=root).json()
    (field_in,) = d["columnLineage"][0]["inputFields"]
    g = c.get("/api/v1/column-lineage", params={"nodeId": target}, headers=root).json()
    (graph_in,) = next(n for n in g["graph"] if n["id"] == target)["data"]["inputFields"]
    assert graph_in["transformationType"] == field_in["transformationType"] == "DIRECT"
    assert graph_in["transformationDescription"] == field_in["transformationDescription"]
    # a field that is not there is not found, as Marquez answers; a job's columns are its datasets'
    missing = c.get("/api/v1/column-lineage", params={"nodeId": f"datasetField:{PG}:public.cl_source:nope"},
                    headers=root)
    hidden = c.get("/api/v1/column-lineage", params={"nodeId": f"datasetField:{PG}:public.cl_target:total"},
                   headers=api["eve"])
    assert_error(missing, 404, "not_found") and assert_error(hidden, 404, "not_found")
    g = c.get("/api/v1/column-lineage", params={"nodeId": "job:loan:cl_job"}, headers=root).json()
    assert {source_a, target} <= {n["id"] for n in g["graph"]}
    assert_error(c.get("/api/v1/column-lineage", params={"nodeId": "job:loan:cl_job"}, headers=api["eve"]),
                 404, "not_found")


def test_search_matches_names_as_marquez_ilike_does(api: dict[str, Any]) -> None:
    c = api["c"]
    run = "0b6e3a5c-51e2-4b7c-9d0e-5b1f2a3c4e31"
    assert post(api, run_event("COMPLETE", run_id=run, job="Search_Job",
                               outputs=[output("public.Monthly Report")])).status_code == 201
    job_event = Serde.to_dict(event_v2.JobEvent(eventTime="2026-04-05T09:00:00Z", producer=PRODUCER,
                                                job=event_v2.Job(namespace="loan", name="search_declared_only")))
    assert post(api, job_event).status_code == 201

    def found(q: str, who: str = "root", **kw: Any) -> set[str]:
        body = c.get("/api/v1/search", params={"q": q, **kw}, headers=api[who]).json()
        assert body["totalCount"] == len(body["results"])
        return {r["nodeId"] for r in body["results"]}

    report = f"dataset:{PG}:public.Monthly Report"
    assert report in found("monthly report") and report in found("LY REP") and report in found("month%port")
    assert "job:loan:Search_Job" in found("search_j") and "job:loan:Search_Job" in found("SEARCH")
    assert "job:loan:search_declared_only" in found("declared_only", filter="job")
    assert found("declared_only", filter="dataset") == set()
    assert found("version(s)") == set()  # text that is not a name
    assert found("monthly", who="eve") == set() and found("search", who="eve") == set()


def test_the_routes_marquez_clients_call(api: dict[str, Any], scored: dict[str, Any]) -> None:
    c, root, eve = api["c"], api["root"], api["eve"]
    all_jobs = c.get("/api/v1/jobs", params={"limit": 2}, headers=root).json()
    assert set(all_jobs) == {"jobs", "totalCount"} and len(all_jobs["jobs"]) == 2 and all_jobs["totalCount"] > 2
    # eve sees project other's jobs only (other tests of this module add some)
    assert {j["namespace"] for j in c.get("/api/v1/jobs", headers=eve).json()["jobs"]} <= {"other"}
    facets = c.get(f"/api/v1/jobs/runs/{scored['run']}/facets", params={"type": "run"}, headers=root).json()
    assert facets == {"runId": scored["run"], "facets": {}}
    job_facets = c.get(f"/api/v1/jobs/runs/{scored['run']}/facets", params={"type": "job"}, headers=root).json()
    assert job_facets["runId"] == scored["run"] and isinstance(job_facets["facets"], dict)
    assert_error(c.get(f"/api/v1/jobs/runs/{scored['run']}/facets", params={"type": "run"}, headers=eve),
                 404, "not_found")
    path = f"/api/v1/namespaces/{_enc(PG)}/datasets/{_enc('scores/2026:04')}/versions/{_enc('v/3@x')}"
    v = c.get(path, headers=root).json()
    assert v["version"] == "v/3@x" and v["createdByRun"]["id"] == scored["run"]
    assert_error(c.get(path, headers=eve), 404, "not_found")
    assert_error(c.get(path.replace("v%2F3", "v%2F4"), headers=root), 404, "not_found")
    assert c.get("/api/v1/namespaces/loan/jobs/train/versions", headers=root).json() == {"versions": []}
    assert_error(c.get("/api/v1/namespaces/loan/jobs/train/versions", headers=eve), 404, "not_found")
    assert_error(c.get("/api/v1/namespaces/loan/jobs/train/versions/x", headers=root), 404, "not_found")


def test_a_hidden_run_id_is_looked_up_as_an_absent_one(api: dict[str, Any], scored: dict[str, Any]) -> None:
    """The same store reads for a run id that is hidden and one that is nowhere (no timing oracle)."""
    from provenance.access.visibility import Principal
    from provenance.marquez import MarquezView

    svc = api["app"].state.api.service
    calls: list[str] = []

    def counted(view: MarquezView) -> MarquezView:
        store = view.store

        class Counting:
            def __getattr__(self, name: str) -> Any:
                attr = getattr(store, name)
                if callable(attr):
                    def call(*a: Any, **kw: Any) -> Any:
                        calls.append(name)
                        return attr(*a, **kw)
                    return call
                return attr
        view.store = Counting()  # type: ignore[assignment]
        view.q.store = view.store  # type: ignore[misc]
        return view

    eve = Principal("eve", projects=frozenset({"other"}))
    seen = []
    for run_id in (scored["run"], "0b6e3a5c-51e2-4b7c-9d0e-5b1f2a3c4fff"):
        calls.clear()
        with pytest.raises(Exception) as exc:
            counted(MarquezView(svc, eve)).run(run_id)
        seen.append((type(exc.value).__name__, str(exc.value).replace(run_id, "@"), list(calls)))
    assert seen[0] == seen[1] and seen[0][0] == "NotFoundError"


def test_a_facet_set_later_wins_from_its_time_on(api: dict[str, Any]) -> None:
    """A DatasetEvent's documentation and DROP after a version that has its own documentation: the dataset
    shows the later ones; the version made before the DatasetEvent does not."""
    c, root = api["c"], api["root"]
    first, second = "0b6e3a5c-51e2-4b7c-9d0e-5b1f2a3c4e41", "0b6e3a5c-51e2-4b7c-9d0e-5b1f2a3c4e42"

    def doc(text: str) -> documentation_dataset.DocumentationDatasetFacet:
        return documentation_dataset.DocumentationDatasetFacet(description=text)

    assert post(api, run_event("COMPLETE", run_id=first, job="facet_writer", time="2026-04-07T10:00:00Z",
                               outputs=[output("public.facet_ds", "1", documentation=doc("old"))])).status_code == 201
    drop = lifecycle_state_change_dataset.LifecycleStateChangeDatasetFacet(
        lifecycleStateChange=lifecycle_state_change_dataset.LifecycleStateChange.DROP)
    later = Serde.to_dict(event_v2.DatasetEvent(eventTime="2026-04-07T11:00:00Z", producer=PRODUCER,
                                                dataset=event_v2.StaticDataset(namespace=PG, name="public.facet_ds",
                                                                               facets={"documentation": doc("new"),
                                                                                       "lifecycleStateChange": drop})))
    assert post(api, later).status_code == 201
    path = f"/api/v1/namespaces/{_enc(PG)}/datasets/public.facet_ds"
    d = c.get(path, headers=root).json()
    assert d["description"] == "new" and d["deleted"] and d["lastLifecycleState"] == "DROP"
    (v1,) = c.get(path + "/versions", headers=root).json()["versions"]
    assert v1["description"] == "old" and v1["lifecycleState"] is None and "lifecycleStateChange" not in v1["facets"]
    assert post(api, run_event("COMPLETE", run_id=second, job="facet_writer", time="2026-04-07T12:00:00Z",
                               outputs=[output("public.facet_ds", "2")])).status_code == 201
    v2, v1 = c.get(path + "/versions", headers=root).json()["versions"]
    assert (v2["version"], v2["description"], v1["description"]) == ("2", "new", "old")
    assert c.get(path, headers=root).json()["description"] == "new"


# -- the tags and the lineage events (the web UI's) --------------------------------------------------
EV_WINDOW = {"after": "2029-03-01T00:00:00Z", "before": "2029-04-01T00:00:00Z"}


@pytest.fixture(scope="module")
def received(api: dict[str, Any]) -> list[dict[str, Any]]:
    """Three RunEvents in March 2029: a loan run writing public.evloan_out, then a run of project other (its START
    two hours ahead of UTC) started by it, reading that table and a table of no project, whose output's column
    lineage and symlinks name the loan table; a DatasetEvent in the window too (not a RunEvent). Tags on a
    dataset of each project and of none."""
    loan_run, child = "0b6e3a5c-51e2-4b7c-9d0e-5b1f2a3c4e01", "0b6e3a5c-51e2-4b7c-9d0e-5b1f2a3c4e02"
    first = run_event("COMPLETE", run_id=loan_run, job="evjob_loan", time="2029-03-02T10:00:00Z",
                      inputs=[table("public.ev_in")], outputs=[output("public.evloan_out", "1")])
    links = symlinks_dataset.SymlinksDatasetFacet(identifiers=[symlinks_dataset.Identifier(
        namespace=PG, name="public.evloan_out", type="TABLE")])
    parent = {"parent": parent_run.ParentRunFacet(run=parent_run.Run(runId=loan_run),
                                                  job=parent_run.Job(namespace="loan", name="evjob_loan"))}
    events = [first]
    for kind, when in (("COMPLETE", "2029-03-03T10:00:00Z"), ("START", "2029-03-03T09:00:00+02:00")):
        ev = run_event(kind, run_id=child, job="evchild", time=when, run_facets=parent,
                       inputs=[table("public.evloan_out"), table("public.ev_in")],
                       outputs=[output("other.ev_out", columnLineage=column_lineage(
                           score=[("public.evloan_out", "evloan_field"), ("public.ev_in", "x")]), symlinks=links)])
        ev["job"]["namespace"] = "other"
        events.append(ev)
    for ev in events:
        assert post(api, ev).status_code == 201
    ds_event = {"eventTime": "2029-03-04T00:00:00Z", "producer": PRODUCER,
                "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
                "dataset": {"namespace": PG, "name": "public.ev_in", "facets": {}}}
    assert post(api, ds_event).status_code == 201
    tags = [{"source": "t", "kind": "tag", "op": "set", "ts": 1_900_000_000_000, "uri": dataset_uri(PG, name),
             "attrs": {"key": key, "value": "1"}}
            for name, key in (("public.evloan_out", "evtag_loan"), ("public.ev_in", "evtag_public"),
                              ("other.ev_out", "evtag_other"))]
    assert api["c"].post("/api/events", json=tags, headers=api["root"]).status_code == 202
    return events


def test_tags_are_the_tag_keys_of_the_datasets_one_may_see(api: dict[str, Any], received: Any) -> None:
    c = api["c"]

    def tags(who: str, **params: Any) -> list[dict[str, Any]]:
        r = c.get("/api/v1/tags", headers=api[who], params=params)
        assert r.status_code == 200 and set(r.json()) == {"tags"}, r.text
        return list(r.json()["tags"])

    everything = tags("root")
    assert {"name": "evtag_loan", "description": None} in everything
    assert [t["name"] for t in everything] == sorted(t["name"] for t in everything)
    assert {t["name"] for t in everything} >= {"evtag_loan", "evtag_public", "evtag_other"}
    assert {t["name"] for t in tags("eve")} & {"evtag_loan", "evtag_public", "evtag_other"} == {"evtag_public",
                                                                                               "evtag_other"}
    assert {t["name"] for t in tags("alice")} & {"evtag_loan", "evtag_public", "evtag_other"} == {"evtag_loan",
                                                                                                 "evtag_public"}
    assert tags("root", limit=1, offset=1) == everything[1:2]


def test_lineage_events_as_received_by_event_time(api: dict[str, Any], received: list[dict[str, Any]]) -> None:
    c, root = api["c"], api["root"]
    r = c.get("/api/v1/events/lineage", params=EV_WINDOW, headers=root)
    assert r.status_code == 200 and set(r.json()) == {"events", "totalCount"}
    # newest first: the child's COMPLETE (10:00Z), its START (07:00Z), the loan run (the 2nd); as posted
    assert r.json() == {"events": [received[1], received[2], received[0]], "totalCount": 3}
    asc = c.get("/api/v1/events/lineage", params={**EV_WINDOW, "sortDirection": "asc", "limit": 1, "offset": 1},
                headers=root).json()
    assert asc == {"events": [received[2]], "totalCount": 3}
    narrow = c.get("/api/v1/events/lineage", params={"after": "2029-03-03T07:00:00Z", "before": "2029-03-03T10:00:00Z"},
                   headers=root).json()
    assert narrow == {"events": [received[2]], "totalCount": 1}  # after is inclusive, before is not
    # the web UI sends before= and after= empty: Marquez's defaults (1970 to 2030)
    default = c.get("/api/v1/events/lineage?limit=100&before=&after=&offset=0&sortDirection=desc", headers=root)
    assert default.status_code == 200 and default.json()["totalCount"] >= 3
    assert received[1] in default.json()["events"]
    assert_error(c.get("/api/v1/events/lineage", params={"before": "yesterday"}, headers=root), 400, "bad_query")


def test_lineage_events_show_a_member_what_she_may_see(api: dict[str, Any], received: list[dict[str, Any]]) -> None:
    c = api["c"]
    eve = c.get("/api/v1/events/lineage", params=EV_WINDOW, headers=api["eve"])
    assert eve.status_code == 200 and eve.json()["totalCount"] == 2
    assert "evloan" not in eve.text and "evjob_loan" not in eve.text
    shown = eve.json()["events"][0]
    assert shown["run"]["runId"] == received[1]["run"]["runId"] and "parent" not in shown["run"]["facets"]
    assert [d["name"] for d in shown["inputs"]] == ["public.ev_in"]
    out = shown["outputs"][0]
    assert out["name"] == "other.ev_out" and out["facets"]["symlinks"]["identifiers"] == []
    assert [f["name"] for f in out["facets"]["columnLineage"]["fields"]["score"]["inputFields"]] == ["public.ev_in"]
    assert shown["eventTime"] == received[1]["eventTime"] and shown["producer"] == received[1]["producer"]
    # alice (loan) sees the loan run only: the other runs' job namespace is a project she is not in
    alice = c.get("/api/v1/events/lineage", params=EV_WINDOW, headers=api["alice"]).json()
    assert alice == {"events": [received[0]], "totalCount": 1}
