"""Synthetic lineage graphs written straight through the store port (bulk load for benchmarks).

Shaped like ML pipelines: six stages per pipeline (ingest → features → training dataset → train →
evaluate → deploy), fan-out of 1–3 outputs per stage, raw inputs drawn from a pool with Zipf
popularity (a few raw datasets feed thousands of pipelines), and evaluations that reuse a few
shared test sets. Each app also has file-level touches, so footprints are real.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from provenance.graph.model import (
    CREATED,
    INSTANCE_OF,
    RAN,
    READ,
    DerivedEdge,
    DerivedLineage,
    FactBatch,
    VersionInfo,
    app_node,
    artifact_node,
    job_node,
    user_node,
)
from provenance.graph.port import LineageStore

STAGES = ["ingest", "features", "training_dataset", "train", "evaluate", "deploy"]
TYPES = ["dataset", "dataset", "training_dataset", "model", "experiment", "deployment"]
EDGES_PER_PIPELINE = 42  # measured average of the generator below, to size a graph by edges


@dataclass
class Built:
    apps: list[str] = field(default_factory=list)
    raws: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    deployments: list[str] = field(default_factory=list)
    first_ts: int = 0
    last_ts: int = 0


def build(store: LineageStore, edges: int, seed: int = 11, progress: Callable[[int], None] | None = None,
          pipelines_per_batch: int = 2000) -> Built:
    rng = random.Random(seed)
    raw_pool = max(1000, edges // 500)
    zipf = [1.0 / (i + 1) ** 1.1 for i in range(raw_pool)]
    tests = [f"file:///lake/tests/suite{i}.parquet" for i in range(20)]
    pool = [f"file:///lake/raw/src{i % 300}/data_{i}.parquet" for i in range(raw_pool)]
    used: set[str] = set()
    out = Built()
    raw_ts = 1_700_000_000_000
    out.first_ts = raw_ts
    ts = raw_ts + 1000
    n_pipelines = max(1, edges // EDGES_PER_PIPELINE)
    initial = {u: raw_ts for u in pool + tests}
    done = 0
    while done < n_pipelines:
        facts = FactBatch()
        lineage: dict[str, DerivedLineage] = {}
        lin = _lineage_of(lineage)

        for p in range(done, min(n_pipelines, done + pipelines_per_batch)):
            prev: list[str] = []
            project = f"proj{p % 50}"
            for s, stage in enumerate(STAGES):
                app = f"app-{p}-{s}"
                ts += rng.randint(1, 5000)
                anode, user = app_node(app), user_node(f"user{(p * 7 + s) % 80}")
                facts.node(anode, "app", ts)
                facts.node(user, "user", ts)
                facts.edge(user, RAN, anode, ts)
                job = job_node(f"{project}/{stage}")
                facts.node(job, "job", ts)
                facts.edge(anode, INSTANCE_OF, job, ts)
                facts.prop(anode, "state", ts + 60_000, "finished", 2)
                facts.prop(anode, "git_commit", ts, f"{p:07x}")
                inputs = list(prev)
                if s <= 1:
                    picked = [pool[i] for i in rng.choices(range(raw_pool), zipf, k=rng.randint(1, 3))]
                    used.update(picked)
                    inputs += picked
                if stage == "evaluate":
                    inputs.append(rng.choice(tests))
                for art in inputs:
                    key = "~0" if art in initial else f"~{_creator(art)}"
                    lin(art).edges.append(DerivedEdge(app, READ, key, ts, ts))
                    if art in initial:
                        lin(art).versions.append(VersionInfo("~0", initial[art], None, "initial"))
                    facts.touch(app, art + "/part-0", "read", art, "", ts, ts)
                outputs = []
                for k in range(rng.randint(1, 2) if s < 5 else 1):
                    art = f"file:///lake/{stage}/{app}/out{k}"
                    outputs.append(art)
                    facts.node(artifact_node(art), "artifact", ts + 10)
                    facts.prop(artifact_node(art), "type", 0, TYPES[s])
                    facts.touch(app, art + "/part-0", "create", art, "", ts + 10, ts + 10)
                    lin(art).versions.append(VersionInfo(f"~{app}", ts + 10, app, "v1"))
                    lin(art).edges.append(DerivedEdge(app, CREATED, f"~{app}", ts + 10, ts + 10))
                out.apps.append(app)
                if stage == "train":
                    out.models.extend(outputs)
                elif stage == "deploy":
                    out.deployments.extend(outputs)
                prev = outputs
        for art in lineage:
            if art in initial:
                facts.node(artifact_node(art), "artifact", initial[art])
                facts.prop(artifact_node(art), "type", 0, "dataset")
        with store.batch():
            store.apply_facts(facts)
            store.add_lineage(lineage.values())
        step = min(n_pipelines, done + pipelines_per_batch) - done
        done += step
        if progress:
            progress(step)
    out.last_ts = ts
    out.raws = sorted(used)
    return out


def _lineage_of(lineage: dict[str, DerivedLineage]) -> Callable[[str], DerivedLineage]:
    def lin(art: str) -> DerivedLineage:
        got = lineage.get(art)
        if got is None:
            got = lineage[art] = DerivedLineage(art, [], [])
        return got

    return lin


def _creator(art: str) -> str:
    # file:///lake/<stage>/<app>/outN → <app>
    return art.split("/")[-2]
