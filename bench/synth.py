"""Synthetic ML-pipeline histories for the benchmarks: pipelines of stages with fan-out, where
inputs are drawn from a pool of raw datasets with a Zipf-like popularity (a few are read by
many pipelines), as in a real data lake."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator

STAGES = ["ingest", "features", "training_dataset", "train", "evaluate", "deploy"]


def pipeline_events(n_events: int, seed: int = 7, raw_pool: int = 20_000) -> Iterator[str]:
    """Canonical events as JSON lines, about ``n_events`` of them, in time order."""
    rng = random.Random(seed)
    weights = [1.0 / (i + 1) ** 1.1 for i in range(raw_pool)]
    cum: list[float] = []
    acc = 0.0
    for w in weights:
        acc += w
        cum.append(acc)
    ts = 1_767_225_600_000
    emitted = 0
    p = 0
    users = [f"user{i}" for i in range(50)]
    while emitted < n_events:
        p += 1
        project = f"proj{p % 40}"
        prev: list[str] = []
        for s, stage in enumerate(STAGES):
            app = f"app-{p}-{s}"
            user = users[(p * 7 + s) % len(users)]
            ts += rng.randint(1, 2000)
            out = [json.dumps({"source": "bench", "kind": "app", "op": "started", "ts": ts, "app_id": app,
                               "user": user, "attrs": {"name": stage, "project": project,
                                                       "command": f"python {stage}.py", "git_commit": f"{p:07x}"}})]
            inputs = list(prev)
            if s in (0, 1):
                for _ in range(rng.randint(1, 3)):
                    k = _pick(cum, rng.random() * acc)
                    inputs.append(f"/lake/raw/src{k % 200}/data_{k}.parquet")
            for f in inputs:
                ts += 3
                out.append(json.dumps({"source": "bench", "kind": "file", "op": "read", "ts": ts, "app_id": app,
                                       "uri": f}))
            if stage == "train":
                outputs = [f"/Projects/{project}/Models/m{p}/1/model.pkl"]
            elif stage == "deploy":
                outputs = [f"/srv/serving/m{p}/model.pkl"]
            elif stage == "training_dataset":
                outputs = [f"/Projects/{project}/{project}_Training_Datasets/td{p}_1/part-{i}.tfrecord"
                           for i in range(rng.randint(1, 4))]
            else:
                outputs = [f"/lake/{stage}/p{p}/part-{i}.parquet" for i in range(rng.randint(1, 3))]
            if rng.random() < 0.3:
                tmp = f"/tmp/{app}/scratch.bin"
                out.append(json.dumps({"source": "bench", "kind": "file", "op": "create", "ts": ts + 1,
                                       "app_id": app, "uri": tmp}))
                out.append(json.dumps({"source": "bench", "kind": "file", "op": "delete", "ts": ts + 2,
                                       "app_id": app, "uri": tmp}))
            for f in outputs:
                ts += 5
                out.append(json.dumps({"source": "bench", "kind": "file", "op": "create", "ts": ts, "app_id": app,
                                       "uri": f}))
            ts += 10
            out.append(json.dumps({"source": "bench", "kind": "app", "op": "finished", "ts": ts, "app_id": app,
                                   "attrs": {"exit_code": 0}}))
            prev = outputs
            for line in out:
                yield line
                emitted += 1


def _pick(cum: list[float], x: float) -> int:
    lo, hi = 0, len(cum) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if cum[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo
