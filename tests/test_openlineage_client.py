"""The official OpenLineage client (openlineage-python 1.54, its HTTP transport with an API key) sends a
pipeline's events to a real ``provenance serve`` on a free loopback port: a parent run, an ingest run
and a training run with parent, schema, columnLineage, sourceCodeLocation, documentation and version
facets, then a DatasetEvent and a JobEvent. What a user relies on is checked over HTTP: the lineage
(footprint and audit), the stored facets, the column lineage, the parent link, Marquez's lineage
graph, an export (HTTP and ``provenance export-openlineage``) with the original runIds and names, and
that a member of another project gets nothing of it from any of the new routes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from openlineage.client import OpenLineageClient, event_v2
from openlineage.client.generated import (
    column_lineage_dataset,
    dataset_version_dataset,
    documentation_dataset,
    documentation_job,
    parent_run,
    schema_dataset,
    source_code_location_job,
)

from provenance.access import AccessStore
from provenance.connectors.openlineage import dataset_uri
from tests.conftest import ROOT
from tests.servers import start_serve, stop_serve

PRODUCER = "https://github.com/example/loan-pipeline/tree/v1"
DAG, INGEST, TRAIN = ("5f0c1d2e-3a4b-4c5d-8e6f-7a8b9c0d1e01", "5f0c1d2e-3a4b-4c5d-8e6f-7a8b9c0d1e02",
                      "5f0c1d2e-3a4b-4c5d-8e6f-7a8b9c0d1e03")
PG, MODELS = "postgres://db.example:5432", "s3://loan-models"
APPS, OUT = (PG, "public.applications"), (MODELS, "scores/2026-04")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("olclient") / "home"
    access = AccessStore(home / "access.db")
    tokens = {name: access.create_token(name, admin=admin, projects=projects)[1]
              for name, admin, projects in (("pipeline", True, ()), ("alice", False, ("loan",)),
                                            ("eve", False, ("other",)))}
    access.close()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's package, whatever is installed
    proc, base = start_serve(home, env)
    yield {"base": base, "home": home, "env": env, **tokens}
    stop_serve(proc)


def get(server: dict[str, Any], who: str, path: str, **params: Any) -> tuple[int, Any]:
    url = server["base"] + path + (f"?{urlencode(params)}" if params else "")
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {server[who]}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        body = json.loads(exc.read())
        assert set(body) == {"error"} and body["error"]["status"] == exc.code  # the one error body
        return exc.code, body


def eventually(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    """The server's processor applies the log in the background: wait (bounded) for it to have."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.2)


def _ds(cls: type, ns_name: tuple[str, str], version: str, **facets: Any) -> Any:
    facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=version)
    return cls(namespace=ns_name[0], name=ns_name[1], facets=facets)


def _run(kind: str, run_id: str, job: str, at: str, *, parent: bool = True, inputs: Any = (), outputs: Any = (),
         job_facets: dict[str, Any] | None = None) -> event_v2.RunEvent:
    facets: dict[str, Any] = {}
    if parent:
        facets["parent"] = parent_run.ParentRunFacet(run=parent_run.Run(runId=DAG),
                                                     job=parent_run.Job(namespace="loan", name="loan_pipeline"))
    return event_v2.RunEvent(eventType=event_v2.RunState[kind], eventTime=at, producer=PRODUCER,
                             run=event_v2.Run(runId=run_id, facets=facets),
                             job=event_v2.Job(namespace="loan", name=job, facets=job_facets or {}),
                             inputs=list(inputs), outputs=list(outputs))


SCHEMA_IN = schema_dataset.SchemaDatasetFacet(fields=[schema_dataset.SchemaDatasetFacetFields(name=n, type=t)
                                                      for n, t in (("income", "int"), ("age", "int"))])
SCHEMA_OUT = schema_dataset.SchemaDatasetFacet(fields=[schema_dataset.SchemaDatasetFacetFields(name="score",
                                                                                               type="double")])
COLUMNS = column_lineage_dataset.ColumnLineageDatasetFacet(fields={"score": column_lineage_dataset.Fields(
    inputFields=[column_lineage_dataset.InputField(namespace=PG, name=APPS[1], field=f, transformations=[
        column_lineage_dataset.Transformation(type="DIRECT", subtype="TRANSFORMATION")]) for f in ("income", "age")],
    transformationDescription="logistic regression score", transformationType="INDIRECT")})
CODE = source_code_location_job.SourceCodeLocationJobFacet(type="git", url="https://git.example/loan/train.py")


@pytest.fixture(scope="module")
def sent(server: dict[str, Any]) -> dict[str, Any]:
    client = OpenLineageClient(config={"transport": {"type": "http", "url": server["base"],
                                                     "auth": {"type": "api_key", "apiKey": server["pipeline"]}}})
    train_in = [_ds(event_v2.InputDataset, APPS, "7", schema=SCHEMA_IN)]
    train_out = [_ds(event_v2.OutputDataset, OUT, "v3", schema=SCHEMA_OUT, columnLineage=COLUMNS)]
    train_job = {"sourceCodeLocation": CODE,
                 "documentation": documentation_job.DocumentationJobFacet(description="trains the loan model")}
    events: list[Any] = [
        _run("START", DAG, "loan_pipeline", "2026-04-05T10:00:00Z", parent=False),
        _run("START", INGEST, "ingest", "2026-04-05T10:00:01Z"),
        _run("COMPLETE", INGEST, "ingest", "2026-04-05T10:01:00Z",
             outputs=[_ds(event_v2.OutputDataset, APPS, "7", schema=SCHEMA_IN)]),
        _run("START", TRAIN, "train", "2026-04-05T10:02:00Z", inputs=train_in, job_facets=train_job),
        _run("COMPLETE", TRAIN, "train", "2026-04-05T10:09:00Z", inputs=train_in, outputs=train_out,
             job_facets=train_job),
        _run("COMPLETE", DAG, "loan_pipeline", "2026-04-05T10:10:00Z", parent=False),
        event_v2.DatasetEvent(eventTime="2026-04-05T11:00:00Z", producer=PRODUCER, dataset=event_v2.StaticDataset(
            namespace=APPS[0], name=APPS[1], facets={"documentation": documentation_dataset.DocumentationDatasetFacet(
                description="loan applications, one row each")})),
        event_v2.JobEvent(eventTime="2026-04-05T11:00:00Z", producer=PRODUCER,
                          job=event_v2.Job(namespace="loan", name="weekly_report"),
                          inputs=[event_v2.InputDataset(namespace=OUT[0], name=OUT[1])]),
    ]
    for e in events:
        client.emit(e)  # the HTTP transport raises on any answer but 2xx
    client.close()
    eventually(lambda: get(server, "pipeline", f"/api/apps/openlineage:{TRAIN}")[1].get("state") == "finished",
               "the training run finished")
    eventually(lambda: get(server, "pipeline", f"/api/v1/namespaces/{quote(PG, safe='')}/datasets/{APPS[1]}")[1]
               .get("description") == "loan applications, one row each", "the DatasetEvent applied")
    return {"out": dataset_uri(*OUT), "in": dataset_uri(*APPS)}


def test_the_lineage_of_the_runs(server: dict[str, Any], sent: dict[str, Any]) -> None:
    _, fp = get(server, "pipeline", f"/api/apps/openlineage:{TRAIN}/footprint")
    assert {(a["uri"], a["version"], tuple(a["types"])) for a in fp["artifacts"]} == {
        (sent["in"], "7", ("INPUT",)), (sent["out"], "v3", ("OUTPUT_MODIFIED",))}
    _, audit = get(server, "pipeline", "/api/audit", uri=sent["out"])
    assert {a["app_id"] for a in audit["apps"]} == {f"openlineage:{INGEST}", f"openlineage:{TRAIN}"}
    assert [(a["uri"], a["version"]) for a in audit["artifacts"]] == [(sent["in"], "7")]


def test_facets_and_the_parent_run_are_stored_and_given_back(server: dict[str, Any], sent: dict[str, Any]) -> None:
    _, app = get(server, "pipeline", f"/api/apps/openlineage:{TRAIN}")
    assert app["parent"]["app_id"] == f"openlineage:{DAG}" and app["parent"]["job"] == "loan/loan_pipeline"
    assert app["parent"]["facet"]["run"]["runId"] == DAG and "facet:run:parent" not in app["props"]
    _, art = get(server, "pipeline", "/api/artifacts", uri=sent["out"])
    facets = art["versions"][0]["facets"]
    assert facets["facet:dataset:version"]["datasetVersion"] == "v3"
    assert facets["facet:dataset:schema"]["fields"] == [{"name": "score", "type": "double", "fields": []}]
    assert set(facets["facet:dataset:columnLineage"]["fields"]) == {"score"}
    _, job = get(server, "pipeline", "/api/v1/namespaces/loan/jobs/train")
    assert job["location"] == CODE.url and job["description"] == "trains the loan model"
    assert job["parentJobName"] == "loan_pipeline" and job["latestRun"]["id"] == TRAIN
    assert job["latestRun"]["state"] == "COMPLETED" and job["latestRun"]["facets"]["parent"]["run"]["runId"] == DAG
    assert job["inputs"] == [{"namespace": PG, "name": APPS[1]}] and job["outputs"] == [{"namespace": MODELS,
                                                                                         "name": OUT[1]}]
    _, report = get(server, "pipeline", "/api/v1/namespaces/loan/jobs/weekly_report")
    assert report["inputs"] == [{"namespace": MODELS, "name": OUT[1]}] and report["latestRun"] is None


def test_column_lineage(server: dict[str, Any], sent: dict[str, Any]) -> None:
    _, cl = get(server, "pipeline", "/api/column-lineage", uri=sent["out"])
    assert cl["version"] == "v3" and [f["name"] for f in cl["fields"]] == ["score"]
    (score,) = cl["fields"]
    assert [(i["namespace"], i["name"], i["field"]) for i in score["inputs"]] == [(PG, APPS[1], "income"),
                                                                                (PG, APPS[1], "age")]
    assert score["transformation_type"] == "INDIRECT"
    _, g = get(server, "pipeline", "/api/v1/column-lineage", nodeId=f"datasetField:{MODELS}:{OUT[1]}:score")
    nodes = {n["id"]: n for n in g["graph"]}
    out_field = f"datasetField:{MODELS}:{OUT[1]}:score"
    assert set(nodes) == {out_field, f"datasetField:{PG}:{APPS[1]}:income", f"datasetField:{PG}:{APPS[1]}:age"}
    assert {e["destination"] for e in nodes[out_field]["inEdges"]} == set(nodes) - {out_field}
    assert nodes[out_field]["data"]["fieldType"] == "double"


def test_marquez_lineage_graph(server: dict[str, Any], sent: dict[str, Any]) -> None:
    status, g = get(server, "pipeline", "/api/v1/lineage", nodeId=f"dataset:{MODELS}:{OUT[1]}")
    assert status == 200 and set(g) == {"graph"}
    nodes = {n["id"]: n for n in g["graph"]}
    out, inp = f"dataset:{MODELS}:{OUT[1]}", f"dataset:{PG}:{APPS[1]}"
    assert set(nodes) == {out, inp, "job:loan:train", "job:loan:ingest", "job:loan:weekly_report"}
    assert all(set(n) == {"id", "type", "data", "inEdges", "outEdges"} for n in nodes.values())
    assert {n["type"] for i, n in nodes.items() if i.startswith("job:")} == {"JOB"}
    edges = {(e["origin"], e["destination"]) for n in nodes.values() for e in n["inEdges"] + n["outEdges"]}
    assert edges == {(inp, "job:loan:train"), ("job:loan:train", out), ("job:loan:ingest", inp),
                     (out, "job:loan:weekly_report")}
    assert nodes[out]["data"]["fields"] == [{"name": "score", "type": "double", "tags": [], "description": None}]
    assert nodes["job:loan:train"]["data"]["latestRun"]["id"] == TRAIN


def test_the_export_gives_back_the_original_ids_and_names(server: dict[str, Any], sent: dict[str, Any]) -> None:
    _, http = get(server, "pipeline", "/api/export/openlineage", app=f"openlineage:{TRAIN}")
    cli = subprocess.run([sys.executable, "-m", "provenance.cli", "--home", str(server["home"]), "export-openlineage",
                          f"openlineage:{TRAIN}"], capture_output=True, text=True, timeout=120, env=server["env"],
                         check=True)
    for events in (http["events"], [json.loads(ln) for ln in cli.stdout.splitlines()]):
        assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
        assert {e["run"]["runId"] for e in events} == {TRAIN}
        assert {(e["job"]["namespace"], e["job"]["name"]) for e in events} == {("loan", "train")}
        done = events[-1]
        assert [(d["namespace"], d["name"], d["facets"]["version"]["datasetVersion"]) for d in done["inputs"]] == [
            (*APPS, "7")]
        assert [(d["namespace"], d["name"], d["facets"]["version"]["datasetVersion"]) for d in done["outputs"]] == [
            (*OUT, "v3")]
        assert set(done["outputs"][0]["facets"]) == {"version", "schema", "columnLineage"}
        assert done["run"]["facets"]["parent"]["run"]["runId"] == DAG
        assert done["job"]["facets"]["sourceCodeLocation"]["url"] == CODE.url


def test_a_member_of_another_project_gets_nothing_of_it(server: dict[str, Any], sent: dict[str, Any]) -> None:
    pg = quote(PG, safe="")
    routes: list[tuple[str, dict[str, Any]]] = [
        ("/api/v1/namespaces/loan", {}), ("/api/v1/namespaces/loan/jobs", {}),
        ("/api/v1/namespaces/loan/jobs/train", {}), ("/api/v1/namespaces/loan/jobs/train/runs", {}),
        ("/api/v1/namespaces/loan/jobs/weekly_report", {}), (f"/api/v1/runs/{TRAIN}", {}),
        (f"/api/v1/jobs/runs/{DAG}", {}), (f"/api/v1/namespaces/{pg}", {}),
        (f"/api/v1/namespaces/{pg}/datasets", {}), (f"/api/v1/namespaces/{pg}/datasets/{APPS[1]}", {}),
        (f"/api/v1/namespaces/{pg}/datasets/{APPS[1]}/versions", {}),
        ("/api/v1/lineage", {"nodeId": f"dataset:{MODELS}:{OUT[1]}"}),
        ("/api/v1/lineage", {"nodeId": "job:loan:train"}),
        ("/api/v1/column-lineage", {"nodeId": f"dataset:{MODELS}:{OUT[1]}"}),
        ("/api/column-lineage", {"uri": sent["out"]}), (f"/api/apps/openlineage:{TRAIN}", {}),
        ("/api/export/openlineage", {"app": f"openlineage:{TRAIN}"}),
    ]
    for path, params in routes:
        assert get(server, "alice", path, **params)[0] == 200, path  # the loan project's member sees each
        status, body = get(server, "eve", path, **params)
        assert status == 404 and body["error"]["code"] == "not_found", (path, status, body)
    assert get(server, "eve", "/api/v1/namespaces") == (200, {"namespaces": []})
    for q in ("applications", "scores", "train", "loan"):
        assert get(server, "eve", "/api/v1/search", q=q) == (200, {"totalCount": 0, "results": []})
        assert get(server, "alice", "/api/v1/search", q=q)[1]["totalCount"] > 0
    assert {n["name"] for n in get(server, "alice", "/api/v1/namespaces")[1]["namespaces"]} == {"loan", PG, MODELS}
