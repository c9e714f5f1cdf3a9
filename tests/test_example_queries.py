"""The issue's acceptance questions, asked of the bundled example history."""

from __future__ import annotations

import pytest

from provenance.errors import NotFoundError, QueryError
from provenance.events.model import to_ms
from provenance.graph.queries import Limits, LineageQueries
from tests.conftest import APP, RERUN_MARK, P

FG = f"file://{P}/loan_featurestore.db/loan_features_1"
MODEL = f"file://{P}/Models/loan_model"
TD = f"file://{P}/loan_Training_Datasets/loan_td"
DEPLOY = f"file://{P}/Deployments/loan_scoring"
RAW_FEB = f"file://{P}/Raw/applications_2026_02.csv"


def _by(items: list[dict], *keys: str) -> set[tuple]:
    return {tuple(i[k] for k in keys) for i in items}


def test_footprint_of_training_app(loan: LineageQueries) -> None:
    r = loan.footprint(APP + "0006")
    assert r["app"]["job"] == "loan/train" and r["app"]["users"] == ["bob"] and r["app"]["state"] == "finished"
    assert _by(r["artifacts"], "uri", "version", "type") == {
        (TD, "1", "training_dataset"), (MODEL, "1", "model")}
    types = {(i["uri"], tuple(i["types"])) for i in r["artifacts"]}
    assert types == {(TD, ("INPUT",)), (MODEL, ("OUTPUT_ADDED",))}
    files = {(f["uri"], tuple(f["types"])) for f in r["files"]}
    assert files == {
        (f"file://{P}/loan_Training_Datasets/loan_td_1/train.csv", ("INPUT",)),
        (f"file://{P}/Models/loan_model/1/model.pkl", ("OUTPUT_ADDED",)),
        (f"file://{P}/Models/loan_model/1/metrics.json", ("OUTPUT_ADDED",)),
    }


def test_footprint_types_tmp_removed_and_modified(loan: LineageQueries) -> None:
    fe = loan.footprint(APP + "0004")
    files = {f["uri"].rsplit("/", 1)[-1]: f["types"] for f in fe["files"]}
    assert files["fe_0004.parquet"] == ["OUTPUT_TMP"]
    assert files["applications_2026_03.csv"] == ["INPUT"]
    arts = {(a["uri"], a["version"]): a["types"] for a in fe["artifacts"]}
    assert arts[(FG, "0")] == ["INPUT"]  # the Delta writer read the log at version 0 ...
    assert arts[(FG, "1")] == ["OUTPUT_MODIFIED"]  # ... and appended version 1
    ingest = loan.footprint(APP + "0001")
    files = {f["uri"].rsplit("/", 1)[-1]: f["types"] for f in ingest["files"]}
    assert files == {"applications_2026_02.csv.partial": ["OUTPUT_TMP"], "applications_2026_02.csv": ["OUTPUT_ADDED"]}
    deploy2 = loan.footprint(APP + "0014")
    arts = {(a["uri"], a["version"]): a["types"] for a in deploy2["artifacts"]}
    assert arts[(DEPLOY, "v2")] == ["OUTPUT_MODIFIED"]


def test_impact_of_feature_group_version_1(loan: LineageQueries) -> None:
    r = loan.impact(artifact=f"{FG}@1")
    reached = _by([a for a in r["artifacts"] if a["reached"]], "uri", "version")
    for needed in [(TD, "1"), (MODEL, "1"), (f"file://{P}/Experiments/bias_eval", "v1"), (DEPLOY, "v1")]:
        assert needed in reached
    jobs = {a["job"] for a in r["apps"]}
    assert {"loan/training_dataset", "loan/train", "loan/bias_eval", "loan/deploy"} <= jobs
    assert (FG, "1") not in reached  # the start is not its own impact
    assert not r["partial"]
    # version 1 went into version 2 (a Delta append reads the table), so the rerun is affected too
    assert (MODEL, "2") in reached
    # the union of footprints includes inputs of reached apps (the test split the evaluation read)
    inputs = _by([a for a in r["artifacts"] if "INPUT" in a["types"]], "uri", "version")
    assert (TD, "1") in inputs


def test_impact_of_feature_group_version_2_does_not_reach_the_first_model(loan: LineageQueries) -> None:
    r = loan.impact(artifact=f"{FG}@2")
    reached = _by([a for a in r["artifacts"] if a["reached"]], "uri", "version")
    assert (MODEL, "2") in reached and (MODEL, "1") not in reached and (DEPLOY, "v1") not in reached


def test_impact_from_app_and_from_job(loan: LineageQueries) -> None:
    r = loan.impact(app=APP + "0006")
    assert {a["job"] for a in r["apps"]} == {"loan/bias_eval", "loan/deploy"}
    r = loan.impact(job="loan/train")
    assert {a["app_id"] for a in r["apps"]} == {APP + "0007", APP + "0008", APP + "0013", APP + "0014"}


def test_audit_of_deployed_model_reaches_raw_data_commits_users_and_code(loan: LineageQueries) -> None:
    r = loan.upstream(f"{P}/Deployments/loan_scoring/model.pkl")
    assert (r["target"]["uri"], r["target"]["version"], r["target"]["type"]) == (DEPLOY, "v2", "deployment")
    ups = _by(r["artifacts"], "uri", "version")
    assert {(MODEL, "2"), (TD, "2"), (FG, "2"), (FG, "1"), (FG, "0")} <= ups
    raws = {u for u, _ in ups if "/Raw/" in u}
    assert raws == {RAW_FEB, f"file://{P}/Raw/applications_2026_03.csv", f"file://{P}/Raw/applications_2026_04.csv"}
    assert r["users"] == ["alice", "bob"]
    assert r["code_versions"] == ["5c1e0a2", "9d4b7f1"]
    inherited = {k: sorted(ref["uri"] for ref in v) for k, v in r["target"]["inherited_tags"].items()}
    assert inherited == {"pii": sorted(raws)}
    train = [a for a in r["apps"] if a["job"] == "loan/train"]
    assert [(a["app_id"], a["git_commit"], a["env_hash"]) for a in train] == [
        (APP + "0012", "9d4b7f1", "sha256:8b7e44aa9c01")]
    assert (MODEL, "1") not in ups  # model 1 is not an ancestor of what is deployed now


def test_audit_of_model_lists_the_apps_that_used_it_later(loan: LineageQueries) -> None:
    r = loan.upstream(f"{MODEL}@1")
    consumers = {c["job"]: c for c in r["consumers"]}
    assert set(consumers) == {"loan/bias_eval", "loan/deploy"}
    assert _by(consumers["loan/deploy"]["outputs"], "uri", "type") == {(DEPLOY, "deployment")}
    assert _by(consumers["loan/bias_eval"]["outputs"], "type") == {("experiment",)}


def test_gdpr_of_one_raw_file_lists_models_and_deployments_with_evidence(loan: LineageQueries) -> None:
    r = loan.gdpr([RAW_FEB])
    found = _by(r["models"], "uri", "version", "type", "deployed")
    # deployed means deployed now: the second deployment replaced the first, and with it model 1
    assert found == {(MODEL, "1", "model", False), (MODEL, "2", "model", True),
                     (DEPLOY, "v1", "deployment", False), (DEPLOY, "v2", "deployment", True)}
    superseded = {(m["uri"], m["version"]): m["superseded_ts"] for m in r["models"] if not m["current"]}
    assert set(superseded) == {(MODEL, "1"), (DEPLOY, "v1")} and all(superseded.values())
    then = loan.gdpr([RAW_FEB], as_of=to_ms(RERUN_MARK))  # before the second deployment: the first was deployed
    assert _by(then["models"], "uri", "version", "deployed") == {(MODEL, "1", True), (DEPLOY, "v1", True)}
    for m in r["models"]:
        ev = m["evidence"]
        assert ev[0]["uri"] == RAW_FEB and ev[-1]["uri"] == m["uri"]
        kinds = [s["kind"] for s in ev]
        assert kinds[0::2] == ["artifact"] * len(kinds[0::2]) and kinds[1::2] == ["app"] * len(kinds[1::2])
        assert ev[1]["job"] == "loan/feature_engineering"
    assert r["users"] == ["alice", "bob"]
    derived = _by(r["derived"], "uri", "version")
    assert {(FG, "0"), (TD, "1"), (TD, "2")} <= derived
    scratch = [d for d in r["derived"] if "scratch" in d["uri"]]
    assert scratch and all(d["deleted"] for d in scratch)
    assert all([ref["uri"] for ref in d["inherited_tags"]["pii"]] == [RAW_FEB] for d in r["derived"])


def test_gdpr_of_april_data_does_not_reach_the_first_model(loan: LineageQueries) -> None:
    r = loan.gdpr([f"{P}/Raw/applications_2026_04.csv"])
    assert _by(r["models"], "uri", "version") == {(MODEL, "2"), (DEPLOY, "v2")}


def test_as_of_before_the_rerun_shows_the_graph_as_it_stood(loan: LineageQueries) -> None:
    t = to_ms(RERUN_MARK)
    r = loan.upstream(DEPLOY, as_of=t)
    assert r["target"]["version"] == "v1"
    ups = _by(r["artifacts"], "uri", "version")
    assert (MODEL, "1") in ups and (MODEL, "2") not in ups
    assert r["code_versions"] == ["5c1e0a2"]
    g = loan.gdpr([RAW_FEB], as_of=t)
    assert _by(g["models"], "uri", "version") == {(MODEL, "1"), (DEPLOY, "v1")}
    i = loan.impact(artifact=FG, as_of=t)
    assert (MODEL, "2") not in _by(i["artifacts"], "uri", "version")
    with pytest.raises(NotFoundError):
        loan.footprint(APP + "0012", as_of=t)
    with pytest.raises(NotFoundError):
        loan.upstream(f"{MODEL}@2", as_of=t)
    # an app seen mid-run: as of a time between its start and end it is still running
    fp = loan.footprint(APP + "0006", as_of=to_ms("2026-03-03T13:04:25Z"))
    assert fp["app"]["state"] == "started"


def test_depth_limit_and_time_budget_say_partial(loan: LineageQueries) -> None:
    r = loan.upstream(DEPLOY, limits=Limits(depth=2))
    assert r["partial"] and "depth limit 2" in r["reason"]
    assert max(a["depth"] for a in r["apps"]) == 2
    r = loan.gdpr([RAW_FEB], limits=Limits(depth=100))
    assert not r["partial"]
    r = loan.gdpr([RAW_FEB], limits=Limits(time_budget_s=1e-9))
    assert r["partial"] and "time budget" in r["reason"]


def test_pagination_gives_totals(loan: LineageQueries) -> None:
    full = loan.gdpr([RAW_FEB])
    pages = [loan.gdpr([RAW_FEB], limits=Limits(limit=4, offset=o))["derived"] for o in range(0, 20, 4)]
    assert [d for p in pages for d in p] == full["derived"]
    assert loan.gdpr([RAW_FEB], limits=Limits(limit=4))["totals"]["derived"] == len(full["derived"])


def test_unknown_things_raise_clear_errors(loan: LineageQueries) -> None:
    with pytest.raises(NotFoundError, match="no app 'nope'"):
        loan.footprint("nope")
    with pytest.raises(NotFoundError, match="no artifact"):
        loan.upstream("/nowhere/x.pkl")
    with pytest.raises(NotFoundError, match="has no version '7'"):
        loan.upstream(f"{MODEL}@7")
    with pytest.raises(QueryError, match="exactly one"):
        loan.impact()
    with pytest.raises(QueryError, match="depth"):
        Limits(depth=0)
