"""The HTTP API over the embedded stack (TestClient): every endpoint, each error status and its body,
search answering the paper's three questions, and access control across projects."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from provenance.access import AccessStore
from provenance.api.app import create_app
from provenance.config import load_settings
from tests.conftest import APP, EXAMPLE, P

RAW = f"{P}/Raw/applications_2026_02.csv"
DEPLOYED = f"{P}/Deployments/loan_scoring"
FG = f"{P}/loan_featurestore.db/loan_features_1"
OTHER_MODEL = "/Projects/fraud/Models/fraud_model/1/model.pkl"

# project "fraud" reads the loan project's raw data: lineage that crosses projects
CROSS = [
    {"source": "test", "kind": "app", "op": "started", "ts": 1775000000000, "app_id": "fraud_train_1", "user": "eve",
     "attrs": {"name": "fraud_train", "project": "fraud", "command": "python fraud.py"}},
    {"source": "test", "kind": "file", "op": "read", "ts": 1775000001000, "app_id": "fraud_train_1", "user": "eve",
     "uri": RAW},
    {"source": "test", "kind": "file", "op": "create", "ts": 1775000002000, "app_id": "fraud_train_1", "user": "eve",
     "uri": OTHER_MODEL},
    {"source": "test", "kind": "app", "op": "finished", "ts": 1775000003000, "app_id": "fraud_train_1",
     "user": "eve", "attrs": {"exit_code": 0}},
]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["status"] == status
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("api") / "home"
    access = AccessStore(home / "access.db")
    tokens = {name: access.create_token(user, admin=admin, projects=projects)
              for name, user, admin, projects in (("admin", "root", True, ()), ("alice", "alice", False, ("loan",)),
                                                  ("eve", "eve", False, ("fraud",)), ("nobody", "zed", False, ()))}
    revoked_id, revoked = access.create_token("mallory", projects=("loan",))
    access.revoke(revoked_id)
    access.close()
    with TestClient(create_app(load_settings(home=home, server={"allowed_hosts": ["testserver"]}))) as client:
        admin = auth(tokens["admin"][1])
        r = client.post("/api/events", content=EXAMPLE.read_bytes(),
                        headers={**admin, "content-type": "application/x-ndjson"})
        assert r.status_code == 202 and r.json()["accepted"] == 94
        assert client.post("/api/events", json=CROSS, headers=admin).json()["accepted"] == 4
        yield {"c": client, "admin": admin, "alice": auth(tokens["alice"][1]), "eve": auth(tokens["eve"][1]),
               "nobody": auth(tokens["nobody"][1]), "revoked": auth(revoked), "home": home}


# -- ops ---------------------------------------------------------------------------------------------
def test_health_and_metrics(api: dict[str, Any]) -> None:
    c = api["c"]
    c.get(f"/api/apps/{APP}0006/footprint", headers=api["admin"])  # applies what is pending; a timed query
    h = c.get("/healthz").json()
    assert h["status"] == "ok" and h["pending"] == 0
    text = c.get("/metrics").text
    metrics = {ln.split()[0]: float(ln.split()[1]) for ln in text.splitlines() if ln and not ln.startswith("#")}
    assert metrics["provenance_events_in"] == 98 and metrics["provenance_events_applied"] == 98
    assert metrics["provenance_processor_lag"] == 0
    assert any(k.startswith("provenance_query_seconds_bucket") for k in metrics)
    assert metrics["provenance_cdc_unmapped_tables"] == 0  # `provenance cdc` never ran here
    (api["home"] / "cdc").mkdir(exist_ok=True)
    (api["home"] / "cdc" / "unmapped.json").write_text('{"tables": ["public.audit_log", "public.sessions"]}')
    assert "provenance_cdc_unmapped_tables 2.0" in c.get("/metrics").text
    (api["home"] / "cdc" / "unmapped.json").unlink()


# -- errors ------------------------------------------------------------------------------------------
def test_errors_have_one_body_and_the_right_status(api: dict[str, Any]) -> None:
    c, admin = api["c"], api["admin"]
    assert_error(c.get("/api/apps"), 401, "unauthorized")
    assert c.get("/api/apps").headers["www-authenticate"] == "Bearer"
    assert_error(c.get("/api/apps", headers=auth("prov_not-a-token")), 401, "unauthorized")
    assert "revoked" in assert_error(c.get("/api/apps", headers=api["revoked"]), 401, "unauthorized")["message"]
    assert_error(c.post("/api/events", json=CROSS, headers=api["alice"]), 403, "forbidden")
    assert_error(c.get(f"/api/apps/{APP}9999", headers=admin), 404, "not_found")
    assert_error(c.get("/api/artifacts", params={"uri": "/no/such/thing"}, headers=admin), 404, "not_found")
    assert_error(c.get("/api/users/nobody-at-all", headers=admin), 404, "not_found")
    assert_error(c.get("/api/impact", params={"app": f"{APP}0006", "job": "x"}, headers=admin), 400, "bad_query")
    assert_error(c.get("/api/audit", params={"uri": DEPLOYED, "as_of": "yesterday-ish"}, headers=admin), 400,
                 "bad_query")
    err = assert_error(c.get("/api/audit", params={"uri": DEPLOYED, "depth": 0}, headers=admin), 422,
                       "invalid_request")
    assert err["details"][0]["loc"] == ["query", "depth"]
    assert_error(c.get("/api/gdpr", headers=admin), 422, "invalid_request")
    assert_error(c.post("/api/events", content=b"{not json", headers=admin), 422, "invalid_event")
    assert_error(c.post("/api/events", json={"not": "a list"}, headers=admin), 422, "invalid_event")
    deep = b"[" + b"[" * 300 + b"]" * 300 + b"]"  # read by orjson, too deep for it to write again
    assert_error(c.post("/api/events", content=deep, headers={**admin, "content-type": "application/json"}), 422,
                 "invalid_event")
    assert_error(c.post("/api/events", json=[], params={"format": "klingon"}, headers=admin), 400, "bad_query")
    assert_error(c.post("/api/v1/lineage", json={"eventType": "START"}, headers=admin), 422, "invalid_event")
    assert_error(c.get("/api/nothing-here", headers=admin), 404, "not_found")
    assert_error(c.delete("/api/apps", headers=admin), 405, "method_not_allowed")


def test_body_over_the_limit_is_refused(api: dict[str, Any]) -> None:
    settings = load_settings(home=api["home"], server={"allowed_hosts": ["testserver"], "max_body_bytes": 1024})
    client = TestClient(create_app(settings))
    body = json.dumps(CROSS * 3).encode()
    assert len(body) > 1024
    assert_error(client.post("/api/events", content=body, headers={**api["admin"], "content-type": "application/json"}),
                 413, "too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the body is counted as it streams in
        yield from (body[i: i + 100] for i in range(0, len(body), 100))

    assert_error(client.post("/api/events", content=chunks(), headers={**api["admin"],
                                                                        "content-type": "application/json"}),
                 413, "too_large")


def test_bad_records_are_dead_lettered_and_the_stream_goes_on(api: dict[str, Any]) -> None:
    c, admin = api["c"], api["admin"]
    good = {"source": "t", "kind": "file", "op": "read", "ts": 1775000005000, "app_id": "late_reader",
            "uri": f"{P}/Raw/applications_2026_03.csv"}
    r = c.post("/api/events", content=b'{"kind": "nonsense"}\n' + json.dumps(good).encode(),
               headers={**admin, "content-type": "application/x-ndjson"})
    assert r.status_code == 202 and r.json()["accepted"] == 2
    fp = c.get("/api/apps/late_reader/footprint", headers=admin).json()
    assert [a["uri"] for a in fp["artifacts"]] == [f"file://{P}/Raw/applications_2026_03.csv"]
    metrics = c.get("/metrics").text
    assert "provenance_dead_lettered 1.0" in metrics


# -- queries -----------------------------------------------------------------------------------------
def test_apps_users_and_artifacts(api: dict[str, Any]) -> None:
    c, admin = api["c"], api["admin"]
    apps = c.get("/api/apps", params={"user": "bob"}, headers=admin).json()
    assert apps["total"] >= 1 and all("bob" in a["users"] for a in apps["apps"])
    assert c.get("/api/apps", params={"name": "train"}, headers=admin).json()["total"] == 2
    everything = c.get("/api/apps", headers=admin).json()
    page = c.get("/api/apps", params={"limit": 3, "offset": 3}, headers=admin).json()
    assert page["apps"] == everything["apps"][3:6] and page["total"] == everything["total"] >= 15
    app = c.get(f"/api/apps/{APP}0006", headers=admin).json()
    assert app["app_id"] == f"{APP}0006" and app["job"] == "loan/train"
    art = c.get("/api/artifacts", params={"uri": FG}, headers=admin).json()
    assert art["type"] == "feature_group" and [v["version"] for v in art["versions"]] == ["0", "1", "2"]
    assert c.get(f"/api/artifacts/{art['id']}", headers=admin).json()["uri"] == art["uri"]
    user = c.get("/api/users/alice", headers=admin).json()
    assert user["total_runs"] >= 1 and user["jobs"]
    assert "alice" in [u["name"] for u in c.get("/api/users", headers=admin).json()["users"]]


def test_footprint_impact_audit_gdpr_with_as_of_and_pages(api: dict[str, Any]) -> None:
    c, admin = api["c"], api["admin"]
    fp = c.get(f"/api/apps/{APP}0006/footprint", headers=admin).json()
    assert {tuple(a["types"]) for a in fp["artifacts"]} >= {("INPUT",), ("OUTPUT_ADDED",)}
    assert all("uri" in f and "types" in f for f in fp["files"])
    imp = c.get("/api/impact", params={"artifact": f"{FG}@1", "depth": 2}, headers=admin).json()
    assert imp["apps"] and imp["partial"] in (True, False)
    audit = c.get("/api/audit", params={"uri": DEPLOYED}, headers=admin).json()
    assert audit["target"]["type"] == "deployment" and audit["totals"]["artifacts"] >= 5
    early = c.get("/api/audit", params={"uri": DEPLOYED, "as_of": "2026-03-03T16:00:00Z"}, headers=admin).json()
    assert early["target"]["version"] != audit["target"]["version"]  # time travel: the first deployment then
    shallow = c.get("/api/audit", params={"uri": DEPLOYED, "depth": 1}, headers=admin).json()
    assert shallow["partial"] is True and "depth" in shallow["reason"]
    g = c.get("/api/gdpr", params={"uri": RAW}, headers=admin).json()
    assert g["totals"]["models"] >= 3 and all(m["evidence"] for m in g["models"])
    paged = c.get("/api/gdpr", params={"uri": RAW, "limit": 1, "offset": 1}, headers=admin).json()
    assert len(paged["models"]) == 1 and paged["models"][0]["uri"] == g["models"][1]["uri"]


def test_reproducibility_check(api: dict[str, Any]) -> None:
    c, admin = api["c"], api["admin"]
    two = c.get("/api/repro", params={"a": f"{APP}0006", "b": f"{APP}0012"}, headers=admin).json()
    assert not two["reproducible"] and two["inputs"]["changed"]
    now = c.get("/api/repro", params={"a": f"{APP}0006"}, headers=admin).json()
    assert now["query"] == "repro" and now["inputs"]["changed"]  # its training dataset has a newer version
    assert any("newer versions" in w for w in now["warnings"])


# -- search: the paper's three questions -------------------------------------------------------------
def test_search_full_text_filters_facets_and_sorts(api: dict[str, Any]) -> None:
    c, admin = api["c"], api["admin"]
    r = c.get("/api/search", params={"q": "applications", "limit": 100}, headers=admin).json()
    assert r["total"] >= 3 and all("applications" in h["uri"] for h in r["hits"])
    prefix = c.get("/api/search", params={"q": "applicat*", "limit": 100}, headers=admin).json()
    # a prefix, not the exact word only: it also finds the runs named application_…
    assert {h["id"] for h in r["hits"]} < {h["id"] for h in prefix["hits"]}
    assert any(h["kind"] == "app" for h in prefix["hits"])
    models = c.get("/api/search", params={"kind": "artifact", "type": "model"}, headers=admin).json()
    assert {h["type"] for h in models["hits"]} == {"model"} and models["facets"]["type"] == {"model": models["total"]}
    by_usage = c.get("/api/search", params={"kind": "artifact", "sort": "usage"}, headers=admin).json()["hits"]
    assert [h["usage"] for h in by_usage] == sorted((h["usage"] for h in by_usage), reverse=True)
    recent = c.get("/api/search", params={"kind": "app", "sort": "recent"}, headers=admin).json()["hits"]
    assert [h["last_ts"] for h in recent] == sorted((h["last_ts"] for h in recent), reverse=True)
    bob = c.get("/api/search", params={"kind": "app", "user": "bob"}, headers=admin).json()
    assert bob["total"] >= 1 and all("bob" in h["users"] for h in bob["hits"])
    pii = c.get("/api/search", params={"tag": "pii=true"}, headers=admin).json()
    assert pii["total"] >= 1 and all(h["tags"].get("pii") == "true" for h in pii["hits"])
    window = c.get("/api/search", params={"kind": "app", "time_from": "2026-04-01T00:00:00Z"}, headers=admin).json()
    assert 0 < window["total"] < 15
    assert_error(c.get("/api/search", params={"tag": "no-equals"}, headers=admin), 400, "bad_query")


def test_the_papers_three_questions(api: dict[str, Any]) -> None:
    c, admin = api["c"], api["admin"]
    used = c.get("/api/search/most-used-datasets", params={"limit": 3}, headers=admin).json()["datasets"]
    # the feature group and the training dataset are each read by several apps; raw files by one
    assert {d["name"] for d in used[:2]} == {"loan_features", "loan_td"} and used[0]["usage"] >= used[2]["usage"]
    recent = c.get("/api/search/recent-pipeline", params={"dataset": RAW}, headers=admin).json()
    assert recent["pipeline"] == "fraud/fraud_train"  # the newest run that read the raw file
    users = c.get("/api/search/pipeline-users", params={"job": "train"}, headers=admin).json()
    assert users["users"] and all(r["state"] == "finished" for r in users["runs"])
    assert {r["git_commit"] for r in users["runs"]} == {users["latest_version"]}


# -- ingestion and exports ---------------------------------------------------------------------------
def test_openlineage_runevents_are_ingested(api: dict[str, Any]) -> None:
    c, admin = api["c"], api["admin"]
    run = {"runId": "3f5e6a1c-1111-4a2b-9c3d-000000000001"}
    job = {"namespace": "loan", "name": "score_batch"}
    for kind, extra in (("START", {"inputs": [{"namespace": "file", "name": f"{P}/Raw/applications_2026_04.csv"}]}),
                        ("COMPLETE", {"outputs": [{"namespace": "s3://scores", "name": "2026/04/scores.parquet",
                                                   "facets": {"lifecycleStateChange": {
                                                       "lifecycleStateChange": "CREATE"}}}]})):
        r = c.post("/api/v1/lineage", json={"eventType": kind, "eventTime": "2026-04-05T10:00:00Z", "run": run,
                                           "job": job, "producer": "https://example.org/airflow", **extra},
                   headers=admin)
        assert r.status_code == 201, r.text
    app = c.get(f"/api/apps/openlineage:{run['runId']}", headers=admin).json()
    assert app["state"] == "finished" and app["job"] == "loan/score_batch"
    fp = c.get(f"/api/apps/openlineage:{run['runId']}/footprint", headers=admin).json()
    assert {(a["uri"], tuple(a["types"])) for a in fp["artifacts"]} == {
        (f"file://{P}/Raw/applications_2026_04.csv", ("INPUT",)), ("s3://scores/2026/04/scores.parquet",
                                                                   ("OUTPUT_ADDED",))}
    ol = c.get("/api/export/openlineage", params={"app": f"{APP}0006"}, headers=admin).json()["events"]
    assert [e["eventType"] for e in ol] == ["START", "COMPLETE"] and ol[1]["outputs"] and ol[0]["inputs"]


def test_exports(api: dict[str, Any]) -> None:
    c, admin = api["c"], api["admin"]
    prov = c.get("/api/export/prov", params={"uri": DEPLOYED}, headers=admin).json()
    assert prov["entity"] and prov["activity"] and prov["used"] and prov["wasGeneratedBy"] and prov["agent"]
    assert prov["prefix"]["prov"] == "http://www.w3.org/ns/prov#"
    import networkx as nx

    gml = c.get("/api/export/graphml", params={"uri": DEPLOYED}, headers=admin)
    assert gml.headers["content-type"].startswith("application/graphml+xml")
    g = nx.parse_graphml(gml.text)
    assert g.number_of_nodes() > 5 and nx.is_directed_acyclic_graph(g)
    lin = c.get("/api/lineage", params={"uri": DEPLOYED, "direction": "up"}, headers=admin).json()
    assert lin["nodes"] and lin["edges"] and g.number_of_nodes() >= lin["nodes"].__len__() - 0
    md = c.get("/api/reports/audit", params={"uri": DEPLOYED}, headers=admin)
    assert md.headers["content-type"].startswith("text/markdown") and md.text.startswith("# Audit: loan_scoring")
    html = c.get("/api/reports/audit", params={"uri": DEPLOYED, "format": "html"}, headers=admin).text
    assert "<svg" in html and "How it was made" in html
    gd = c.get("/api/reports/gdpr", params={"uri": RAW, "format": "html"}, headers=admin).text
    assert "<svg" in gd and "Models and deployments that used it" in gd


# -- access control ----------------------------------------------------------------------------------
def test_members_see_their_projects_and_redacted_crossings(api: dict[str, Any]) -> None:
    c = api["c"]
    # by id: another project's artifact or app is simply not there
    assert_error(c.get("/api/artifacts", params={"uri": OTHER_MODEL}, headers=api["alice"]), 404, "not_found")
    assert_error(c.get("/api/apps/fraud_train_1", headers=api["alice"]), 404, "not_found")
    assert_error(c.get("/api/artifacts", params={"uri": RAW}, headers=api["eve"]), 404, "not_found")
    assert c.get("/api/artifacts", params={"uri": OTHER_MODEL}, headers=api["eve"]).status_code == 200
    # by search
    assert c.get("/api/search", params={"q": "fraud*"}, headers=api["alice"]).json()["total"] == 0
    assert c.get("/api/search", params={"q": "applications"}, headers=api["eve"]).json()["total"] == 0
    eve_sees = c.get("/api/search", params={"kind": "artifact"}, headers=api["eve"]).json()
    assert {h["project"] for h in eve_sees["hits"]} <= {"fraud", None}
    # through traversals: redacted and flagged, never named
    g = c.get("/api/gdpr", params={"uri": RAW}, headers=api["alice"]).json()
    assert g["redacted"] >= 1
    assert "fraud" not in json.dumps(g)
    assert any(m.get("redacted") for m in g["models"])
    admin_g = c.get("/api/gdpr", params={"uri": RAW}, headers=api["admin"]).json()
    assert admin_g["redacted"] == 0 and "fraud_model" in json.dumps(admin_g)
    up = c.get("/api/audit", params={"uri": OTHER_MODEL}, headers=api["eve"]).json()
    assert up["redacted"] >= 1 and "applications_2026_02" not in json.dumps(up)
    imp = c.get("/api/impact", params={"artifact": RAW}, headers=api["alice"]).json()
    assert imp["redacted"] >= 1 and "fraud" not in json.dumps(imp)
    lin = c.get("/api/lineage", params={"uri": OTHER_MODEL, "direction": "up"}, headers=api["eve"]).json()
    assert lin["redacted"] >= 1 and "applications" not in json.dumps(lin)
    # a user with no project sees what belongs to none, and nothing else
    assert c.get("/api/search", params={"q": "loan*"}, headers=api["nobody"]).json()["total"] == 0


def test_token_cli(tmp_path: Path) -> None:
    import subprocess
    import sys

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "provenance.cli", "--home", str(tmp_path), *args],
                              capture_output=True, text=True, timeout=60, check=False)

    made = json.loads(cli("token", "create", "dana", "--project", "loan", "--label", "ci", "--json").stdout)
    assert made["token"].startswith("prov_")
    listed = json.loads(cli("token", "list", "--json").stdout)["tokens"]
    assert [(t["user"], t["projects"], t["revoked"]) for t in listed] == [("dana", ["loan"], False)]
    assert made["token"] not in (tmp_path / "access.db").read_bytes().decode("latin-1")  # stored hashed
    assert cli("token", "revoke", made["id"]).returncode == 0
    assert json.loads(cli("token", "list", "--json").stdout)["tokens"][0]["revoked"] is True
    r = cli("token", "revoke", made["id"])
    assert r.returncode == 1 and "no active token" in r.stderr
    assert cli("token", "create").returncode == 2
