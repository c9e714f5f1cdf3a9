"""`provenance demo`: the real pipeline, every stage captured, under each capture mode."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from provenance.config import load_settings
from provenance.demo import FEATURE_GROUP, PERSON, RAW_WITH_PERSON, SERVING, DemoError, run_pipeline_demo
from provenance.graph.repro import compare_runs
from provenance.stack import open_stack
from tests.conftest import Queries, dumped
from tests.test_capture import MODES

STAGES = ["ingest", "features", "training-dataset", "train", "bias-evaluation", "deploy"]


@pytest.mark.parametrize("capture", MODES)
def test_the_pipeline_is_captured_end_to_end(tmp_path: Path, capture: str) -> None:
    d = tmp_path / "demo"
    with open(tmp_path / "out.txt", "w") as sink:
        run = run_pipeline_demo(d, Console(file=sink, width=200), capture)
    printed = (tmp_path / "out.txt").read_text()
    assert run.capture == capture
    assert {name: [r.state for r in rs] for name, rs in run.runs.items()} == {s: ["finished"] * 2 for s in STAGES}
    assert PERSON in (d / RAW_WITH_PERSON).read_text()
    for title in ("Audit: loan_scoring", "GDPR report", "Footprint:", "Impact of feature group",
                  "Reproducibility:"):
        assert title in printed
    with open_stack(load_settings(home=d / ".provenance")) as stack:
        assert stack.processor.pending() == 0
        q = Queries(stack.store, stack.rules)
        uri = lambda p: (d / p).resolve().as_uri()  # noqa: E731
        # the person's data reached both models and both deployments, through the feature group's commits
        g = q.gdpr([str(d / RAW_WITH_PERSON)])
        assert {(m["type"], m["uri"], m["version"]) for m in g["models"]} == {
            ("model", uri("models/loan_model"), "1"), ("model", uri("models/loan_model"), "2"),
            ("deployment", uri(SERVING), "v1"), ("deployment", uri(SERVING), "v2")}
        # none of the defects of issue 14:
        # - the evidence runs through the person's own file, never through another month's
        # - nothing derived from another month's file alone, and not the feature group's version 0 (committed
        #   before the February file was read)
        others = ("applications_2026_01", "applications_2026_03")
        for m in g["models"]:
            assert m["evidence"][0]["uri"] == uri(RAW_WITH_PERSON)
            assert not any(o in (step.get("uri") or "") for step in m["evidence"] for o in others), m["evidence"]
        derived = {(x["uri"], x["version"]) for x in g["derived"]}
        assert not any(o in u for u, _ in derived for o in others), derived
        assert (uri(FEATURE_GROUP), "0") not in derived and (uri(FEATURE_GROUP), "1") in derived
        # - the runs' logs are apart (one per run the data reached), not derived data
        assert not any(x["type"] == "log" for x in g["derived"])
        assert len(g["logs"]) == len(g["apps"]) and all("/.provenance/logs/" in x["uri"] for x in g["logs"])
        # - deployed means deployed now: version 2 of each; version 1 says when it was superseded
        state = {(m["uri"], m["version"]): (m["deployed"], m["current"], m["superseded_ts"]) for m in g["models"]}
        for key in [(uri("models/loan_model"), "2"), (uri(SERVING), "v2")]:
            assert state[key] == (True, True, None), key
        for key in [(uri("models/loan_model"), "1"), (uri(SERVING), "v1")]:
            assert state[key][:2] == (False, False) and state[key][2] is not None, key
        if capture == "fanotify":
            # - every model is certain (process flows); the archive written beside the raw file is a copy
            assert all(m["certain"] and m["tier"] == "process" for m in g["models"])
            assert {c["uri"] for c in g["copies"]} == {uri("inbox/applications_2026_02.csv"),
                                                       uri("archive/applications_2026_02.csv.gz")}
        else:  # one flow per Python run: what a run wrote is only possibly made from what it read
            assert {(m["certain"], m["tier"]) for m in g["models"]} == {(False, "run")}
        # - the copies of a file hold its data (the inbox file it came from was removed: deleted); a model's
        #   copies are the deployments serving its bytes, which also use it; what it was trained from is no copy
        if capture == "fanotify":
            assert {(c["uri"], c["deleted"]) for c in g["copies"]} == {
                (uri("inbox/applications_2026_02.csv"), True), (uri("archive/applications_2026_02.csv.gz"), False)}
        gm = q.gdpr([f"{d / 'models/loan_model'}@2"])
        assert {(c["uri"], c["version"], c["tier"]) for c in gm["copies"]} == {(uri(SERVING), "v2", "content")}
        assert [(m["uri"], m["version"], m["certain"], m["deployed"]) for m in gm["models"]] == [
            (uri(SERVING), "v2", True, True)]
        assert [(s["uri"], s.get("version")) for s in gm["models"][0]["evidence"]] == [
            (uri("models/loan_model"), "2"), (uri(SERVING), "v2")]
        # the audit of the deployed model goes back to the raw files, through every stage, with the code
        audit = q.upstream(str(d / SERVING))
        upstream = {(a["uri"], a["version"]) for a in audit["artifacts"]}
        assert {(uri("models/loan_model"), "2"), (uri("training_datasets/loan_td"), "2"),
                (uri(FEATURE_GROUP), "2"), (uri(FEATURE_GROUP), "1"),
                (uri("data/raw/applications_2026_03.csv"), "v1"), (uri(RAW_WITH_PERSON), "v1")} <= upstream
        assert {a["job"] for a in audit["apps"]} >= {"loan/deploy", "loan/train", "loan/training-dataset",
                                                     "loan/features", "loan/ingest"}
        # - the deployment's audit shows the evaluation of the model it is a copy of
        consumers = {c["job"]: c for c in audit["consumers"]}
        assert consumers["loan/bias-evaluation"]["through"]["uri"] == uri("models/loan_model")
        assert any(o["uri"] == uri("reports/fairness_loan_model_2.json")
                   for o in consumers["loan/bias-evaluation"]["outputs"])
        # - the code edit between the two trainings is seen: each model's audit names its own train.py
        code = []
        for version in ("1", "2"):
            a = q.upstream(f"{d / 'models/loan_model'}@{version}")
            code.append({x["version"] for x in a["artifacts"] if x["uri"] == uri("pipeline/train.py")})
        assert len(code[0]) == len(code[1]) == 1 and code[0] != code[1]
        # the bias evaluation read the model and the test data, and wrote the fairness report
        bias = q.footprint(run.runs["bias-evaluation"][0].app_id)
        assert {(a["type"], a["version"], tuple(a["types"])) for a in bias["artifacts"] if a["type"] != "code"
                and a["type"] != "log"} == {("model", "1", ("INPUT",)), ("training_dataset", "1", ("INPUT",)),
                                            ("report", "v1", ("OUTPUT_ADDED",))}
        # the training dataset was cut from the feature group at the version asked for
        td = q.footprint(run.runs["training-dataset"][0].app_id)
        assert [(a["version"], a["types"]) for a in td["artifacts"] if a["type"] == "feature_group"] == [
            ("1", ["INPUT"])]
        # the two trainings differ in inputs and code, not in environment
        cmp = dumped(compare_runs(q.q, run.runs["train"][0].app_id, run.runs["train"][1].app_id))
        assert cmp["same"] == {"inputs": False, "code": False, "environment": True} and not cmp["reproducible"]
        assert [(c["uri"], c["a"], c["b"]) for c in cmp["inputs"]["changed"]] == [
            (uri("training_datasets/loan_td"), ["1"], ["2"])]
        assert cmp["code"]["git"]["a"] != cmp["code"]["git"]["b"]
        assert [c["uri"] for c in cmp["code"]["files"]["changed"]] == [uri("pipeline/train.py")]
        if capture == "fanotify":  # the shell stages: sort, gzip, cp, rm — seen whatever the language
            ingest = q.footprint(run.runs["ingest"][0].app_id)
            files = {f["uri"].rsplit("/", 2)[-2] + "/" + f["uri"].rsplit("/", 1)[-1]: f["types"]
                     for f in ingest["files"] if "/.provenance/" not in f["uri"]}
            assert files == {
                "inbox/applications_2026_01.csv": ["INPUT", "OUTPUT_REMOVED"],
                "inbox/applications_2026_02.csv": ["INPUT", "OUTPUT_REMOVED"],
                "raw/applications_2026_01.csv": ["OUTPUT_ADDED"], "raw/applications_2026_02.csv": ["OUTPUT_ADDED"],
                "archive/applications_2026_01.csv.gz": ["OUTPUT_ADDED"],
                "archive/applications_2026_02.csv.gz": ["OUTPUT_ADDED"],
                "pipeline/ingest.sh": ["INPUT"],
            }


def test_demo_refuses_a_directory_in_use(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("keep me")
    with open(os.devnull, "w") as sink, pytest.raises(DemoError, match="not empty"):
        run_pipeline_demo(tmp_path, Console(file=sink), "audit-hook")
    assert (tmp_path / "mine.txt").read_text() == "keep me"
    r = subprocess.run([sys.executable, "-m", "provenance.cli", "demo", "--dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "not empty" in r.stderr
