"""MLflow (3.x and 2.x) through CDC, end to end: the real MLflow creates its schema in PostgreSQL and runs
a workflow (`tests/mlflow_workflow.py`) while `provenance cdc` captures every MLflow table with the
Debezium engine; the processor maps the changes with the default mappings; the queries answer.

Each MLflow runs in its own virtual environment (MLflow 2.x needs pandas < 3, this environment has 3),
made once under ~/.cache/provenance-tests from PyPI and reused. MLflow 3.18.0, the newest on the index,
cannot be installed (its mlflow-skinny==3.18.0 is not on the index): 3.17.2 is the newest that can.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from provenance.bus.embedded import EmbeddedLog
from provenance.bus.port import raw_topic
from provenance.config import load_settings
from provenance.connectors.cdc import CdcNormalizer, unmapped_tables
from provenance.graph.model import version_node
from provenance.stack import open_stack
from tests.conftest import Queries
from tests.test_cdc import _start_cdc, _stop

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / "tests" / "mlflow_workflow.py"
VENVS = Path(os.environ.get("PROVENANCE_TEST_VENVS", Path.home() / ".cache" / "provenance-tests"))
#: what each MLflow needs beside it to talk to PostgreSQL as its users install it. MLflow 2.22 breaks
#: on SQLAlchemy 2.1 (it imports FallbackAsyncAdaptedQueuePool, gone in 2.1), which pip picks for it;
#: SQLAlchemy 2.1 drives postgresql:// with psycopg 3.
MLFLOWS = {"3.17.2": ["mlflow==3.17.2", "psycopg[binary]"],
           "2.22.5": ["mlflow==2.22.5", "psycopg2-binary", "sqlalchemy<2.1"]}
MODEL = "loan-scoring"


def mlflow_python(version: str) -> Path:
    """The interpreter of a virtual environment holding this MLflow (made on first use)."""
    venv = VENVS / f"mlflow-{version}"
    python = venv / "bin" / "python"
    if not (venv / ".complete").exists():
        VENVS.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, timeout=300)
        r = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                            *MLFLOWS[version]], capture_output=True, text=True, timeout=1200, check=False)
        assert r.returncode == 0, r.stderr[-3000:]
        (venv / ".complete").write_text("")
    return python


def _records(home: Path) -> int:
    if not (home / "log.db").exists():
        return 0
    bus = EmbeddedLog(home / "log.db")
    try:
        return bus.end_offsets(raw_topic("debezium"))[0]
    finally:
        bus.close()


def _until_quiet(home: Path, proc: subprocess.Popen[bytes], log: Path, at_least: int, quiet_s: float = 6,
                 timeout: float = 240) -> int:
    """Wait until the engine has published ``at_least`` changes and then nothing for ``quiet_s``."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        have = _records(home)
        if have != last:
            last, since = have, time.monotonic()
        elif have >= at_least and time.monotonic() - since >= quiet_s:
            return have
        time.sleep(0.5)
    raise AssertionError(f"{last} change(s) after {timeout} s: {log.read_text()[-3000:]}")


@pytest.mark.parametrize("version", list(MLFLOWS))
def test_mlflow_through_cdc_gives_gdpr_audit_and_registry_state(version: str, postgres: Any,
                                                                  tmp_path: Path) -> None:
    python = mlflow_python(version)
    port = postgres.extra["port"]
    database = f"mlflow_{version.replace('.', '_')}"
    with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres", autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {database}")
        c.execute(f"CREATE DATABASE {database}")
    uri = f"postgresql://postgres@127.0.0.1:{port}/{database}"
    subprocess.run([str(python), str(WORKFLOW), uri, "--init"], check=True, timeout=300, capture_output=True)
    with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname={database}") as c:
        tables = sorted(r[0] for r in c.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"))
    assert ("logged_models" in tables) == version.startswith("3.")

    # every MLflow table captured: the unmapped ones are warned about once each, and then ignored
    home = tmp_path / "home"
    home.mkdir()
    config = home / "config.yaml"
    config.write_text(yaml.safe_dump({"search": {"type": "none"}, "cdc": {"sources": [{
        "name": "mlflow", "connector": "postgresql", "host": "127.0.0.1", "port": port, "user": "postgres",
        "database": database, "tables": [f"public.{t}" for t in tables]}]}}))
    out = tmp_path / "cdc.log"
    proc = _start_cdc(config, home, out)
    try:
        workdir = tmp_path / "work"
        workdir.mkdir()
        result_file = tmp_path / "result.json"
        r = subprocess.run([str(python), str(WORKFLOW), uri, str(workdir), str(result_file)], capture_output=True,
                           text=True, timeout=600, check=False)
        assert r.returncode == 0, r.stderr[-3000:]
        _until_quiet(home, proc, out, at_least=40)
    finally:
        _stop(proc, out)
    ids = json.loads(result_file.read_text())
    assert ids["mlflow"] == version

    text = out.read_text()
    unmapped = unmapped_tables([f"public.{t}" for t in tables], CdcNormalizer().mappings)
    mapped = sorted(set(tables) - {u.removeprefix("public.") for u in unmapped})
    assert {"runs", "tags", "params", "datasets", "inputs", "model_versions", "model_version_tags",
            "registered_models", "registered_model_aliases", "registered_model_tags"} <= set(mapped)
    for t in tables:
        warnings = text.count(f"warning: no table mapping for public.{t}:")
        assert warnings == (0 if t in mapped else 1), (t, text[-3000:])
    if version.startswith("3."):
        assert len(tables) >= 60 and len(unmapped) >= 50  # MLflow 3 has ~65 tables; most say nothing of lineage

    # `provenance status` counts the tables cdc warned about
    env = {**os.environ, "PROVENANCE_CONFIG": str(config), "PROVENANCE_HOME": str(home), "PYTHONPATH": str(ROOT)}
    status = subprocess.run([sys.executable, "-m", "provenance.cli", "status", "--json"], capture_output=True,
                            text=True, env=env, timeout=120, check=True)
    assert json.loads(status.stdout)["cdc"] == {"unmapped_tables": len(unmapped), "unmapped": unmapped}

    settings = load_settings(config, home=home)
    with open_stack(settings) as stack:
        stats = stack.processor.catch_up()
        assert stats.dead_lettered == 0, stats.errors  # nothing of MLflow's own rows is unusable
        assert stats.records == _records(home)
        _check_mlflow_graph(stack, Queries(stack.store, stack.rules), ids, workdir, version)


def _check_mlflow_graph(stack: Any, q: Queries, ids: dict[str, Any], workdir: Path, version: str) -> None:
    runs, models = ids["runs"], ids["models"]
    registry = f"mlflow://registry/models/{MODEL}"
    loans, rates, other = (f"file://{workdir}/{n}.csv" for n in ("loans", "rates", "other"))
    mlflow3 = version.startswith("3.")

    def logged(run: str) -> str:  # what each run logged as its model, as the graph names it
        if mlflow3:
            return "models:///" + models[run].removeprefix("models:/")
        return f"file://{workdir}/mlruns/{ids['experiment_id']}/{runs[run]}/artifacts/model"

    # GDPR of the dataset's source: exactly the models trained on it (the two registered versions and
    # what their runs logged), none from run C (trained on other.csv)
    g = q.gdpr([loans])
    assert [(d["uri"], d["version"]) for d in g["data"]] == [(loans, ids["digests"]["loans"])]
    found = {(m["uri"], m["version"]) for m in g["models"]}
    want = {(registry, "1"), (registry, "2"), (logged("a"), None), (logged("b"), None)}
    assert {(u, v if u == registry else None) for u, v in found} == want, found
    assert not any(m["deleted"] for m in g["models"])
    assert {a["app_id"] for a in g["apps"]} >= {f"mlflow:{runs['a']}", f"mlflow:{runs['b']}"}
    assert f"mlflow:{runs['c']}" not in {a["app_id"] for a in g["apps"]}

    # the audit of version 2 reaches its run and both its datasets, at the digests MLflow logged
    up = q.upstream(f"{registry}@2")
    assert (up["target"]["uri"], up["target"]["version"], up["target"]["type"]) == (registry, "2", "model")
    versions = {(a["uri"], a["version"]) for a in up["artifacts"]}
    assert {(loans, ids["digests"]["loans"]), (rates, ids["digests"]["rates"])} <= versions, versions
    apps = {a["app_id"] for a in up["apps"]}
    assert f"mlflow:{runs['b']}" in apps and f"mlflow:{runs['a']}" not in apps
    assert f"mlflow-registry:{MODEL}/2" in apps  # the registry made the version, not the run reading its model
    assert up["code_versions"] == ["c0ffeetr"]

    # per version: stage (2.x), tags; the alias names version 2; version 3 was deleted
    vnodes = stack.store.nodes([version_node(registry, k) for k in ("1", "2", "3")])
    stages = {k: vnodes[version_node(registry, k)].props.get("stage") for k in ("1", "2", "3")}
    assert stages == ({"1": "None", "2": "None", "3": "Deleted_Internal"} if mlflow3
                      else {"1": "Archived", "2": "Production", "3": "Deleted_Internal"})
    assert vnodes[version_node(registry, "1")].props.get("tag.validated") == "false"
    assert vnodes[version_node(registry, "2")].props.get("tag.validated") == "true"
    model = stack.store.nodes([f"artifact:{registry}"])[f"artifact:{registry}"]
    assert model.tags.get("alias.champion") == "2"
    deleted = q.gdpr([other])
    assert [(m["uri"], m["version"], m["deleted"]) for m in deleted["models"] if m["uri"] == registry] == [
        (registry, "3", True)]

    # a renamed registered model lives under its new name only; a deleted one is deleted
    scratch = {(m["uri"].removeprefix("mlflow://registry/models/"), m["version"], m["deleted"])
               for m in deleted["models"] if m["uri"].startswith("mlflow://registry/models/") and m["uri"] != registry}
    assert scratch == {("scratch", "1", True), ("scratch-2", "1", False), ("doomed", "1", True)}, scratch
    old = stack.store.nodes(["artifact:mlflow://registry/models/scratch"])["artifact:mlflow://registry/models/scratch"]
    assert old.props.get("tag.owner") is None  # set, then deleted

    # run D read a dataset over HTTP; it was deleted and restored: finished, as it was; its tag deleted
    remote = q.gdpr(["https://example.com/rates.csv"])
    assert [(d["uri"], d["version"]) for d in remote["data"]] == [("https://example.com/rates.csv",
                                                                    ids["digests"]["remote"])]
    assert f"mlflow:{runs['d']}" in {a["app_id"] for a in remote["apps"]}
    if mlflow3:  # the model whose logging failed is not an output of its run, and says FAILED
        failed = "models:///" + ids["failed_model"]
        outputs = {f["uri"] for f in q.footprint(f"mlflow:{runs['d']}")["files"]
                   if any("OUTPUT" in t for t in f["types"])}
        assert failed not in outputs, outputs
        assert stack.store.nodes([f"artifact:{failed}"])[f"artifact:{failed}"].props.get("status") == "FAILED"

    # runs: the deleted one is not finished; the job is the script; command, code version, params
    fp = {k: q.footprint(f"mlflow:{r}")["app"] for k, r in runs.items()}
    assert (fp["a"]["state"], fp["b"]["state"], fp["c"]["state"]) == ("finished", "finished", "killed")
    assert fp["d"]["state"] == "finished" and fp["d"]["props"].get("tag.team") is None
    assert fp["a"]["job"] == fp["b"]["job"] == f"{workdir}/train.py" != fp["c"]["job"]
    assert fp["a"]["command"] == f"{workdir}/train.py" and fp["a"]["git_commit"] == "c0ffeetr"
    assert fp["a"]["props"]["param.max_depth"] == "4"
    assert fp["a"]["project"] == f"mlflow-experiment-{ids['experiment_id']}"
    assert fp["a"]["started_ts"] < fp["a"]["ended_ts"]
