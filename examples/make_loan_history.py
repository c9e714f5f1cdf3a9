"""Writes examples/loan_pipeline.jsonl: a loan-approval ML pipeline as raw canonical events.

Hopsworks layout, project ``loan``; users alice (data engineer) and bob (data scientist):

  ingest (alice)       → Raw/applications_2026_02.csv (tagged pii) and _03
  feature_engineering  → feature group loan_features_1 as a Delta table: commit 0 (Feb), commit 1 (Mar),
                         with a scratch file created and deleted on the way
  training_dataset     → reads the feature group at version 1 → loan_td_1
  train (bob)          → Models/loan_model/1 (code at git commit 5c1e0a2)
  bias_eval (bob)      → reads the model and the test split → Experiments/bias_eval/fairness_1.json
  deploy (alice)       → Deployments/loan_scoring/model.pkl
  -- new data arrives --
  ingest, feature_engineering (commit 2), training_dataset (loan_td_2), train (git 9d4b7f1, new env)
  → loan_model/2, bias_eval, deploy (overwrites the served model)

Run ``python examples/make_loan_history.py`` to regenerate; the output is deterministic.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

P = "/Projects/loan"
FG = f"{P}/loan_featurestore.db/loan_features_1"
ENV_1 = "sha256:3f9a1c0d6b2e"
ENV_2 = "sha256:8b7e44aa9c01"

events: list[dict[str, object]] = []
_clock = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
_seq = 0


def tick(seconds: float = 1.0) -> str:
    global _clock
    _clock += timedelta(seconds=seconds)
    return _clock.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def emit(**fields: object) -> None:
    global _seq
    _seq += 1
    source = str(fields.get("source", "fs"))
    fields.setdefault("source", source)
    fields["event_id"] = f"{source}-{_seq:05d}"
    events.append({k: v for k, v in fields.items() if v is not None})


def app(app_id: str, user: str, name: str, command: str, git: str, env: str, body: list[tuple[str, ...]],
        gap: float = 3600.0, exit_code: int = 0) -> None:
    tick(gap)
    common = {"name": name, "project": "loan", "command": command, "cwd": f"{P}/Jupyter",
              "host": "worker-1", "git_commit": git, "git_dirty": False, "env_hash": env,
              "python": "3.11.7"}
    emit(source="launcher", kind="app", op="submitted", ts=tick(), app_id=app_id, user=user, attrs=common)
    emit(source="launcher", kind="app", op="started", ts=tick(), app_id=app_id, user=user,
         attrs={"pid": 4000 + _seq})
    for step in body:
        op, uri, *rest = step
        if op == "commit":
            emit(source="delta", kind="table_commit", op="commit", ts=tick(2), app_id=app_id, user=user,
                 uri=uri, attrs={"version": int(rest[0]), "operation": rest[1],
                                 "commit_info": {"prov.app_id": app_id, "prov.user": user}})
        elif op == "rename":
            emit(kind="file", op="rename", ts=tick(), app_id=app_id, user=user, uri=uri, dst=rest[0])
        elif op == "xattr_set":
            emit(kind="file", op="xattr_set", ts=tick(), app_id=app_id, user=user, uri=uri,
                 attrs={"name": rest[0], "value": rest[1]})
        else:
            emit(kind="file", op=op, ts=tick(5), app_id=app_id, user=user, uri=uri,
                 attrs={"size": 1024 * (len(uri) % 7 + 1)} if op in ("create", "write") else {})
    state = "finished" if exit_code == 0 else "failed"
    emit(source="launcher", kind="app", op=state, ts=tick(30), app_id=app_id, user=user,
         attrs={"exit_code": exit_code, "cpu_s": 12.5, "peak_rss_mb": 512})


def feature_engineering(app_id: str, raw: str, version: int, op: str) -> list[tuple[str, ...]]:
    log = f"{FG}/_delta_log/{version:020d}.json"
    body: list[tuple[str, ...]] = [("read", raw)]
    if version > 0:  # a Delta writer reads the log to learn the table's current version
        body.append(("read", f"{FG}/_delta_log/{version - 1:020d}.json"))
    scratch = f"{P}/Resources/scratch/fe_{app_id}.parquet"
    body += [("create", scratch), ("read", scratch), ("delete", scratch),
             ("create", f"{FG}/part-{version:05d}-a.parquet"), ("create", log), ("commit", FG, str(version), op)]
    return body


# --- first pipeline run -------------------------------------------------------------------------
app("application_1772442000000_0001", "alice", "ingest", "python ingest.py --month 2026-02", "5c1e0a2", ENV_1, [
    ("create", f"{P}/Raw/applications_2026_02.csv.partial"),
    ("rename", f"{P}/Raw/applications_2026_02.csv.partial", f"{P}/Raw/applications_2026_02.csv"),
    ("xattr_set", f"{P}/Raw/applications_2026_02.csv", "user.prov.pii", "true"),
], gap=0)
app("application_1772442000000_0002", "alice", "feature_engineering", "python feature_engineering.py",
    "5c1e0a2", ENV_1, feature_engineering("0002", f"{P}/Raw/applications_2026_02.csv", 0, "CREATE TABLE"))
app("application_1772442000000_0003", "alice", "ingest", "python ingest.py --month 2026-03", "5c1e0a2", ENV_1, [
    ("create", f"{P}/Raw/applications_2026_03.csv"),
    ("xattr_set", f"{P}/Raw/applications_2026_03.csv", "user.prov.pii", "true"),
], gap=86400)
app("application_1772442000000_0004", "alice", "feature_engineering", "python feature_engineering.py",
    "5c1e0a2", ENV_1, feature_engineering("0004", f"{P}/Raw/applications_2026_03.csv", 1, "WRITE"))
app("application_1772442000000_0005", "bob", "training_dataset", "python make_td.py --fg-version 1",
    "5c1e0a2", ENV_1, [
        ("read", f"delta://{FG}@1"),
        ("create", f"{P}/loan_Training_Datasets/loan_td_1/train.csv"),
        ("create", f"{P}/loan_Training_Datasets/loan_td_1/test.csv"),
    ])
app("application_1772442000000_0006", "bob", "train", "python train.py --td loan_td_1", "5c1e0a2", ENV_1, [
    ("read", f"{P}/loan_Training_Datasets/loan_td_1/train.csv"),
    ("create", f"{P}/Models/loan_model/1/model.pkl"),
    ("create", f"{P}/Models/loan_model/1/metrics.json"),
])
app("application_1772442000000_0007", "bob", "bias_eval", "python bias_eval.py --model 1", "5c1e0a2", ENV_1, [
    ("read", f"{P}/Models/loan_model/1/model.pkl"),
    ("read", f"{P}/loan_Training_Datasets/loan_td_1/test.csv"),
    ("create", f"{P}/Experiments/bias_eval/fairness_1.json"),
])
app("application_1772442000000_0008", "alice", "deploy", "cp Models/loan_model/1/model.pkl Deployments/loan_scoring/",
    "5c1e0a2", ENV_1, [
        ("read", f"{P}/Models/loan_model/1/model.pkl"),
        ("create", f"{P}/Deployments/loan_scoring/model.pkl"),
    ])

RERUN_MARK = tick(3600)  # the graph as of this instant is the first run only

# --- new data arrives: second run ---------------------------------------------------------------
app("application_1772442000000_0009", "alice", "ingest", "python ingest.py --month 2026-04", "5c1e0a2", ENV_1, [
    ("create", f"{P}/Raw/applications_2026_04.csv"),
    ("xattr_set", f"{P}/Raw/applications_2026_04.csv", "user.prov.pii", "true"),
], gap=30 * 86400)
app("application_1772442000000_0010", "alice", "feature_engineering", "python feature_engineering.py",
    "5c1e0a2", ENV_1, feature_engineering("0010", f"{P}/Raw/applications_2026_04.csv", 2, "WRITE"))
app("application_1772442000000_0011", "bob", "training_dataset", "python make_td.py --fg-version 2",
    "5c1e0a2", ENV_1, [
        ("read", f"delta://{FG}@2"),
        ("create", f"{P}/loan_Training_Datasets/loan_td_2/train.csv"),
        ("create", f"{P}/loan_Training_Datasets/loan_td_2/test.csv"),
    ])
app("application_1772442000000_0012", "bob", "train", "python train.py --td loan_td_2", "9d4b7f1", ENV_2, [
    ("read", f"{P}/loan_Training_Datasets/loan_td_2/train.csv"),
    ("create", f"{P}/Models/loan_model/2/model.pkl"),
    ("create", f"{P}/Models/loan_model/2/metrics.json"),
])
app("application_1772442000000_0013", "bob", "bias_eval", "python bias_eval.py --model 2", "9d4b7f1", ENV_2, [
    ("read", f"{P}/Models/loan_model/2/model.pkl"),
    ("read", f"{P}/loan_Training_Datasets/loan_td_2/test.csv"),
    ("create", f"{P}/Experiments/bias_eval/fairness_2.json"),
])
app("application_1772442000000_0014", "alice", "deploy", "cp Models/loan_model/2/model.pkl Deployments/loan_scoring/",
    "9d4b7f1", ENV_2, [
        ("read", f"{P}/Models/loan_model/2/model.pkl"),
        ("write", f"{P}/Deployments/loan_scoring/model.pkl"),
    ])

if __name__ == "__main__":
    out = Path(__file__).with_name("loan_pipeline.jsonl")
    out.write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in events))
    print(f"wrote {len(events)} events to {out}; first run ends before {RERUN_MARK}")
