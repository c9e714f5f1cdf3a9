"""CDC of metadata databases: table mappings, and PostgreSQL → Debezium engine → bus → graph."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from provenance.bus.embedded import EmbeddedLog
from provenance.bus.port import Record, raw_topic
from provenance.config import load_settings
from provenance.connectors.cdc import CdcNormalizer, JsonPath, ValueSpec, load_table_mappings
from provenance.errors import EventError, MappingError
from provenance.graph.queries import LineageQueries
from provenance.stack import Stack, open_stack
from tests.conftest import Queries

ROOT = Path(__file__).resolve().parent.parent
DDL = ROOT / "connectors" / "sql" / "postgres-metadata.sql"
normalize = CdcNormalizer()


def change(table: str, op: str, after: dict[str, Any] | None, before: dict[str, Any] | None = None,
           schema: str = "public", envelope: bool = False, lsn: int = 100, ts: int = 1) -> bytes:
    """A Debezium change event as the JSON converter writes it; ``ts`` is the commit time (source.ts_ms)."""
    payload = {"before": before, "after": after, "op": op, "ts_ms": ts,
               "source": {"connector": "postgresql", "db": "meta", "schema": schema, "table": table, "lsn": lsn,
                          "ts_ms": ts}}
    if envelope:
        return json.dumps({"schema": {"type": "struct", "optional": False}, "payload": payload}).encode()
    return json.dumps(payload).encode()


FILE_ROW = {"id": 1, "inode_id": 7, "operation": "CREATE", "io_timestamp": 1_772_442_000_000, "io_logical_time": 3,
            "io_app_id": "application_1_0001", "io_user_name": "alice", "path": "/Projects/loan/Raw/apps/a.csv",
            "target_path": None, "xattr_name": None, "xattr_value": None, "project_name": "loan"}


def test_a_file_log_row_becomes_a_file_event_with_or_without_the_schema_envelope() -> None:
    for envelope in (False, True):
        [ev] = normalize(change("hops_file_provenance_log", "c", FILE_ROW, envelope=envelope))
        assert (ev.kind, ev.op, ev.source) == ("file", "create", "hopsfs")
        assert ev.uri == "hopsfs:///Projects/loan/Raw/apps/a.csv" and ev.app_id == "application_1_0001"
        assert ev.user == "alice" and ev.ts == 1_772_442_000_000 and ev.attrs == {"inode": 7, "logical_time": 3}
    # the same change twice is the same event (replays collapse); a snapshot read of it makes one too
    a = normalize(change("hops_file_provenance_log", "c", FILE_ROW))
    assert a == normalize(change("hops_file_provenance_log", "c", FILE_ROW))
    assert normalize(change("hops_file_provenance_log", "r", FILE_ROW, lsn=5))[0].op == "create"


def test_changes_a_mapping_does_not_count_tombstones_and_truncates_make_nothing() -> None:
    # the log is append-only: its updates and deletes are housekeeping
    assert normalize(change("hops_file_provenance_log", "u", FILE_ROW)) == []
    assert normalize(change("hops_file_provenance_log", "d", None, before=FILE_ROW)) == []
    assert normalize(b"") == [] and normalize(b"null") == []  # tombstones
    assert normalize(json.dumps({"schema": {}, "payload": None}).encode()) == []
    assert normalize(change("hops_file_provenance_log", "t", None)) == []


def test_updates_follow_states_and_rename_keeps_its_target() -> None:
    # an MLflow run row as MLflow 2.x/3.x writes it (source_name and source_version are left empty)
    run = {"run_uuid": "r1", "name": "brave-owl-12", "source_type": "UNKNOWN", "source_name": "", "user_id": "bob",
           "status": "RUNNING", "start_time": 1000, "end_time": None, "source_version": "", "deleted_time": None,
           "lifecycle_stage": "active", "artifact_uri": "s3://mlflow/1/r1/artifacts", "experiment_id": 1}
    def apps(events: list[Any]) -> list[Any]:  # (the runs' describe events: test_a_restored_run_…)
        return [e for e in events if e.kind == "app"]

    started = apps(normalize(change("runs", "c", run)))
    assert {(e.kind, e.op, e.app_id, e.ts) for e in started} == {("app", "started", "mlflow:r1", 1000)}
    assert started[0].attrs["project"] == "mlflow-experiment-1" and "name" not in started[0].attrs  # not the job
    finished = apps(normalize(change("runs", "u", {**run, "status": "FINISHED", "end_time": 5000})))
    assert [(e.op, e.ts) for e in finished] == [("started", 1000), ("finished", 5000)]
    # a deleted run is killed when it was deleted, never "finished" again
    gone = apps(normalize(change("runs", "u", {**run, "status": "FINISHED", "end_time": 5000,
                                               "lifecycle_stage": "deleted", "deleted_time": 9000})))
    assert [(e.op, e.ts) for e in gone] == [("started", 1000), ("killed", 9000)]
    # a state the mapping does not track makes no event
    task = {"task_id": "fit", "dag_id": "loan", "run_id": "m1", "map_index": -1, "state": "deferred",
            "try_number": 1, "start_date": "2026-03-02T09:00:00Z", "end_date": None, "queued_dttm": None,
            "hostname": "h", "unixname": "airflow", "operator": "PythonOperator", "pid": 1}
    assert normalize(change("task_instance", "u", task)) == []
    [ti] = normalize(change("task_instance", "u", {**task, "state": "running"}))
    assert ti.app_id == "airflow:loan/m1/fit/-1/1" and ti.attrs["name"] == "loan.fit" and ti.ts == 1_772_442_000_000
    moved = {**FILE_ROW, "operation": "RENAME", "target_path": "/Projects/loan/Raw/apps/b.csv"}
    [ren] = normalize(change("hops_file_provenance_log", "c", moved))
    assert ren.op == "rename" and ren.dst == "hopsfs:///Projects/loan/Raw/apps/b.csv"


def test_unmapped_tables_are_ignored_with_one_warning_and_broken_rows_are_errors_for_the_dead_letter_topic(
        caplog: pytest.LogCaptureFixture) -> None:
    mine = CdcNormalizer(mappings=load_table_mappings())
    with caplog.at_level(logging.WARNING, logger="provenance.connectors.cdc"):
        assert mine(change("orders", "c", {"id": 1})) == []
        assert mine(change("orders", "u", {"id": 1})) == []
    assert [r.getMessage() for r in caplog.records if "public.orders" in r.getMessage()] == [
        caplog.records[0].getMessage()]  # one warning for the table, not one a change
    assert "no table mapping for public.orders: its changes are ignored" in caplog.records[0].getMessage()
    assert mine.mappings.ignored == {"public.orders": 2}
    with pytest.raises(EventError, match="not JSON"):
        normalize(b"{nope")
    with pytest.raises(EventError, match="ts came out null"):
        normalize(change("hops_file_provenance_log", "c", {**FILE_ROW, "io_timestamp": None}))
    with pytest.raises(EventError, match="needs 'source' and 'op'"):
        normalize(b'{"after": {}}')


@pytest.mark.parametrize(("text", "message"), [
    ("tables: [{table: orders, source: s, events: [{kind: app, op: started, ts: {field: t}, app_id: x}]}]",
     r"line 1: table mapping #1: 'table' must be 'schema.table'"),
    ("tables:\n  - table: public.orders\n    source: s\n    events:\n      - kind: app\n        op: started\n"
     "        ts: {field: t}\n", r"line 5: table public.orders: event #1 \(app\): needs field 'app_id'"),
    ("tables:\n  - table: public.orders\n    source: s\n    events:\n      - kind: file\n        uri: {field: p}\n"
     "        ts: {field: t}\n        op: {field: o, map: {X: explode}}\n",
     r"line 8: table public.orders: event #1 \(file\): field 'op' gives 'explode'"),
    ("tables:\n  - table: public.orders\n    source: s\n    changes: [create, upsert]\n    events: []\n",
     r"line 4: table public.orders: 'changes' must list"),
    ("tables:\n  - table: public.orders\n    source: s\n    events:\n      - kind: file\n        op: read\n"
     "        uri: {field: p, tempate: x}\n        ts: {field: t}\n",
     r"line 7: table public.orders: event #1 \(file\): field 'uri': unknown key\(s\) tempate"),
    ("tables:\n  - table: public.orders\n    source: s\n    events:\n      - kind: file\n        op: read\n"
     "        uri: {template: 'x://{bad-name}'}\n        ts: {field: t}\n",
     r"line 7: .*template placeholders must be column names"),
])
def test_a_bad_mapping_file_fails_at_start_naming_line_table_and_field(tmp_path: Path, text: str,
                                                                        message: str) -> None:
    path = tmp_path / "mappings.yaml"
    path.write_text(text)
    with pytest.raises(MappingError, match=f"{path}, {message}"):
        load_table_mappings([path])


@pytest.mark.parametrize(("spec", "row", "want"), [
    (ValueSpec(field="a"), {"a": "x"}, "x"),
    (ValueSpec(field="a"), {}, None),
    (ValueSpec(field="a", default="d"), {"a": None}, "d"),
    (ValueSpec(field="a", lower=True), {"a": "MiXed"}, "mixed"),
    (ValueSpec(field="a", lower=True), {"a": 12}, "12"),
    (ValueSpec(field="a", map={"A": 1, "true": "yes", "7": "seven"}, default="other"), {"a": "A"}, 1),
    (ValueSpec(field="a", map={"A": 1, "true": "yes", "7": "seven"}, default="other"), {"a": True}, "yes"),
    (ValueSpec(field="a", map={"A": 1, "true": "yes", "7": "seven"}, default="other"), {"a": 7}, "seven"),
    (ValueSpec(field="a", map={"A": 1}, default="other"), {"a": "B"}, "other"),
    (ValueSpec(field="a", map={"A": 1}, default="other"), {"a": None}, "other"),
    (ValueSpec(field="a", map={"a": 1}, lower=True), {"a": "A"}, 1),
    (ValueSpec(first=("a", "b")), {"a": None, "b": 0}, 0),
    (ValueSpec(first=("a", "b")), {"a": None}, None),
    (ValueSpec(first=("a", "b"), default=5), {}, 5),
    (ValueSpec(first=("a", "b"), lower=True), {"b": "Q"}, "q"),
    (ValueSpec(template="s3://{b}/k", template_fields=("b",)), {"b": "bk"}, "s3://bk/k"),
    (ValueSpec(template="s3://{b}/k", template_fields=("b",)), {"b": False}, "s3://false/k"),
    (ValueSpec(template="s3://{b}/k", template_fields=("b",), default="d"), {"b": None}, None),  # null in, null out
    (ValueSpec(template="{a}-{b}", template_fields=("a", "b")), {"a": 1, "b": "z"}, "1-z"),
    (ValueSpec(template="{a}-{b}", template_fields=("a", "b")), {"a": 1}, None),
    (ValueSpec(template="{a}:{a}", template_fields=("a",)), {"a": "r"}, "r:r"),
    (ValueSpec(template="{{lit}}{a}", template_fields=("a",)), {"a": "r"}, "{lit}r"),
    (ValueSpec(template="x{a!r}", template_fields=("a",)), {"a": "r"}, "x'r'"),
    (ValueSpec(template="P/{a}", template_fields=("a",), lower=True, map={"p/x": "hit"}), {"a": "X"}, "hit"),
    (ValueSpec(const="fixed"), {"a": 1}, "fixed"),
    # json: the first of several paths that leads to a value; format: the value put into text
    (ValueSpec(field="a", json_paths=(JsonPath.parse("$.uri"), JsonPath.parse("$.url"))), {"a": '{"url": "u"}'}, "u"),
    (ValueSpec(field="a", json_paths=(JsonPath.parse("$.uri"), JsonPath.parse("$.url"))), {"a": '{"uri": null}'},
     None),
    (ValueSpec(field="a", json_paths=(JsonPath.parse("$.t"),), format="t:///{}"), {"a": '{"t": "c.s.x"}'}, "t:///c.s.x"),
    (ValueSpec(field="a", format="{{{}}}", lower=True), {"a": "X"}, "{x}"),
    (ValueSpec(field="a", format="t:///{}", default="none"), {"a": None}, "none"),
    # first: values as well as columns, each with its own post-processing
    (ValueSpec(first=(ValueSpec(field="j", json_paths=(JsonPath.parse("$.v"),)), "b")), {"j": '{"v": 3}', "b": 1}, 3),
    (ValueSpec(first=(ValueSpec(field="j", json_paths=(JsonPath.parse("$.v"),)), "b")), {"j": '{"w": 3}', "b": 1}, 1),
    (ValueSpec(first=(ValueSpec(field="j", format="x{}"), "b"), map={"xq": "hit"}), {"j": "q"}, "hit"),
])
def test_a_value_comes_from_a_row_as_the_mapping_reference_says(spec: ValueSpec, row: dict[str, Any],
                                                                 want: Any) -> None:
    assert spec.resolve(row) == want


def test_a_users_mapping_replaces_the_default_for_its_table(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({"tables": [{
        "table": "public.runs", "source": "my-mlflow",
        "events": [{"kind": "app", "op": "started", "ts": {"field": "start_time"},
                    "app_id": {"template": "run-{run_uuid}"}}]}]}))
    mine = CdcNormalizer([path])
    [ev] = mine(change("runs", "c", {"run_uuid": "x", "start_time": 7}))
    assert (ev.source, ev.app_id, ev.op) == ("my-mlflow", "run-x", "started")
    # other schemas keep the default ("*.runs"), and the other default tables too
    assert mine(change("runs", "c", {"run_uuid": "x", "start_time": 7, "status": "RUNNING", "experiment_id": 1},
                       schema="other"))[0].source == "mlflow"


# -- PostgreSQL → Debezium engine → the bus → the processor ------------------------------------
PIPELINE_SQL = """
INSERT INTO yarn_app_provenance_log (app_id, app_name, app_user, app_state, state_timestamp, project_name,
                                     app_command, git_commit)
VALUES ('application_1_0001', 'ingest', 'alice', 'RUNNING', 1772442000000, 'loan', 'python ingest.py', 'c0ffee'),
       ('application_1_0001', 'ingest', 'alice', 'FINISHED', 1772442060000, 'loan', 'python ingest.py', 'c0ffee');
INSERT INTO hops_file_provenance_log (inode_id, operation, io_timestamp, io_logical_time, io_app_id, io_user_name,
                                      path, project_name)
VALUES (1, 'ACCESS_DATA', 1772442010000, 1, 'application_1_0001', 'alice', '/Projects/loan/Raw/applications.csv',
        'loan'),
       (2, 'CREATE', 1772442020000, 2, 'application_1_0001', 'alice',
        '/Projects/loan/loan_Training_Datasets/loans_1/part-0.parquet', 'loan'),
       (2, 'ACCESS_DATA', 1772442110000, 3, 'mlflow:r1', 'bob',
        '/Projects/loan/loan_Training_Datasets/loans_1/part-0.parquet', 'loan');
INSERT INTO runs (run_uuid, name, source_name, user_id, status, start_time, end_time, source_version, artifact_uri,
                  experiment_id)
VALUES ('r1', 'train', '', 'bob', 'RUNNING', 1772442100000, NULL, '', 's3://mlflow/1/r1/artifacts', 1);
INSERT INTO tags (key, value, run_uuid) VALUES ('mlflow.source.git.commit', 'c0ffee', 'r1');
INSERT INTO registered_models (name, creation_time, last_updated_time, description)
VALUES ('scoring', 1772442200000, 1772442200000, 'loan scoring');
INSERT INTO model_versions (name, version, creation_time, last_updated_time, user_id, current_stage, source, run_id,
                            status)
VALUES ('scoring', 1, 1772442200000, 1772442200000, 'bob', 'None',
        's3://mlflow/1/r1/artifacts/model', 'r1', 'READY');
"""


def _cdc_config(home: Path, postgres: Any, database: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    tables = ["yarn_app_provenance_log", "hops_file_provenance_log", "runs", "tags", "registered_models",
              "model_versions"]
    cfg = {"search": {"type": "none"}, "cdc": {"sources": [{
        "name": "meta", "connector": "postgresql", "host": "127.0.0.1", "port": postgres.extra["port"],
        "user": "postgres", "database": database, "tables": [f"public.{t}" for t in tables]}]}}
    path = home / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _wait_for_records(log_path: Path, n: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    have = 0
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        if log_path.exists():
            bus = EmbeddedLog(log_path)
            have = bus.end_offsets(raw_topic("debezium"))[0]
            bus.close()
            if have >= n:
                return have
        time.sleep(0.3)
    raise AssertionError(f"{have} of {n} change(s) after {timeout} s: {log.read_text()[-3000:]}")


def _start_cdc(config: Path, home: Path, out: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PROVENANCE_CONFIG": str(config), "PROVENANCE_HOME": str(home)}
    with out.open("ab") as f:
        return subprocess.Popen([sys.executable, "-m", "provenance.cli", "cdc"], cwd=ROOT, env=env, stdout=f,
                                stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen[bytes], log: Path) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    assert proc.returncode == 0, log.read_text()[-3000:]


def test_postgres_changes_reach_the_graph_through_the_debezium_engine(postgres: Any, tmp_path: Path) -> None:
    database = "meta_e2e"
    with psycopg.connect(f"host=127.0.0.1 port={postgres.extra['port']} user=postgres dbname=postgres",
                         autocommit=True) as c:
        c.execute(f"CREATE DATABASE {database}")
    dsn = f"host=127.0.0.1 port={postgres.extra['port']} user=postgres dbname={database}"
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(DDL.read_text())
        c.execute(PIPELINE_SQL)  # before capture starts: the snapshot reads these
    home = tmp_path / "home"
    config = _cdc_config(home, postgres, database)
    out = tmp_path / "cdc.log"
    proc = _start_cdc(config, home, out)
    try:
        _wait_for_records(home / "log.db", 9, proc, out)
        with psycopg.connect(dsn, autocommit=True) as c:  # live changes: an update and a new row
            c.execute("UPDATE runs SET status = 'FINISHED', end_time = 1772442150000 WHERE run_uuid = 'r1'")
            c.execute("INSERT INTO hops_file_provenance_log (inode_id, operation, io_timestamp, io_app_id, "
                      "io_user_name, path) VALUES (3, 'ACCESS_DATA', 1772442120000, 'application_1_0002', 'bob', "
                      "'/Projects/loan/loan_Training_Datasets/loans_1/part-0.parquet')")
        _wait_for_records(home / "log.db", 11, proc, out)
    finally:
        _stop(proc, out)

    settings = load_settings(config, home=home)
    with open_stack(settings) as stack:
        stats = stack.processor.catch_up()
        assert stats.dead_lettered == 0, stats.errors
        q = Queries(stack.store, stack.rules)
        _check_graph(stack, q)

    # a restart goes on from the engine's offsets: nothing is published twice, new changes are
    proc = _start_cdc(config, home, out)
    try:
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("UPDATE model_versions SET current_stage = 'Production', last_updated_time = 1772442300000")
        have = _wait_for_records(home / "log.db", 12, proc, out)
        time.sleep(2)  # anything re-published would arrive by now
    finally:
        _stop(proc, out)
    bus = EmbeddedLog(home / "log.db")
    assert bus.end_offsets(raw_topic("debezium"))[0] == have == 12
    bus.close()
    with open_stack(settings) as stack:
        assert stack.processor.catch_up().records == 1
        v1 = "version:mlflow://registry/models/scoring@1"  # the stage is a property of the version
        assert stack.store.nodes([v1])[v1].props.get("stage") == "Production"


def _check_graph(stack: Stack, q: LineageQueries) -> None:
    fp = q.footprint("application_1_0001")
    assert fp["app"]["state"] == "finished" and fp["app"]["users"] == ["alice"]
    files = {(f["uri"], tuple(f["types"])) for f in fp["files"]}
    assert files == {("hopsfs:///Projects/loan/Raw/applications.csv", ("INPUT",)),
                     ("hopsfs:///Projects/loan/loan_Training_Datasets/loans_1/part-0.parquet", ("OUTPUT_ADDED",))}
    run = stack.store.nodes(["app:mlflow:r1"])["app:mlflow:r1"]
    assert run.props["state"] == "finished" and run.props["git_commit"] == "c0ffee"
    # the registered model version came from run r1 (what it logged), and r1 read the training dataset
    # the ingest app wrote from the raw applications: the audit walks it back
    r = q.upstream("mlflow://registry/models/scoring@1")
    assert (r["target"]["type"], r["target"]["version"]) == ("model", "1")
    ups = {a["uri"] for a in r["artifacts"]}
    assert {"hopsfs:///Projects/loan/loan_Training_Datasets/loans", "hopsfs:///Projects/loan/Raw/applications.csv"} \
        <= ups, ups
    assert {a["app_id"] for a in r["apps"]} >= {"mlflow:r1", "application_1_0001"}
    # and the other way: the raw file reaches the model (GDPR)
    g = q.gdpr(["hopsfs:///Projects/loan/Raw/applications.csv"])
    assert "mlflow://registry/models/scoring" in json.dumps(g)


def test_an_unusable_change_of_a_mapped_table_goes_to_the_dead_letter_topic_and_the_rest_is_applied(
        tmp_path: Path) -> None:
    with open_stack(load_settings(home=tmp_path / "home", search={"type": "none"})) as stack:
        stack.bus.produce(raw_topic("debezium"), [
            Record(value=change("orders", "c", {"id": 1})),  # an unmapped table: ignored, not a dead letter
            Record(value=change("hops_file_provenance_log", "c", {**FILE_ROW, "io_timestamp": None})),
            Record(value=change("hops_file_provenance_log", "c", FILE_ROW)),
            Record(value=b""),  # tombstone
        ])
        stats = stack.processor.catch_up()
        assert (stats.records, stats.dead_lettered, stats.events) == (4, 1, 1)
        assert "ts came out null" in stats.errors[0]
        assert stack.store.nodes(["app:application_1_0001"])


# -- the mapping language's constructs ------------------------------------------------------------
def _mapping(tmp_path: Path, table: dict[str, Any]) -> CdcNormalizer:
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump({"tables": [{"table": "public.things", "source": "s", **table}]}))
    return CdcNormalizer([path])


def test_json_paths_source_metadata_filters_objects_and_versions(tmp_path: Path) -> None:
    norm = _mapping(tmp_path, {"changes": ["create", "read", "update", "delete"], "events": [
        {"kind": "file", "when": {"kind": "dataset", "state": {"not_in": ["gone"]}, "src": {"is_null": False}},
         "op": "read", "ts": {"source": "ts_ms"}, "app_id": {"template": "a-{id}"},
         "uri": {"field": "src", "json": "$.where['uri']"}, "version": {"field": "digest"},
         "attrs": {"first_tag": {"field": "src", "json": "$.tags[0]"}, "lsn": {"source": "lsn"}}},
        {"kind": "describe", "when": {"kind": ["model", "dataset"]}, "op": "app", "ts": {"source": "ts_ms"},
         "app_id": {"template": "a-{id}"},
         "attrs": {"props": {"object": {"p.{kind}": {"field": "digest"}, "change": {"source": "change"},
                                        "gone": None}}}},
    ]})
    row = {"id": 7, "kind": "dataset", "state": "live", "digest": "d1",
           "src": '{"where": {"uri": "/data/x.csv"}, "tags": ["pii", "raw"]}'}
    read, described = norm(change("things", "c", row, lsn=42))
    assert (read.uri, read.app_id, read.ts, read.attrs) == ("file:///data/x.csv", "a-7", 1,
                                                            {"first_tag": "pii", "lsn": 42, "version": "d1"})
    assert described.attrs["props"] == {"p.dataset": "d1", "change": "create", "gone": None}
    # filters: a row of another kind makes only what applies to it; a filtered-out row makes nothing
    [model] = norm(change("things", "u", {**row, "kind": "model"}))
    assert model.kind == "describe" and model.attrs["props"]["p.model"] == "d1"
    assert norm(change("things", "u", {**row, "kind": "other"})) == []
    assert [e.kind for e in norm(change("things", "u", {**row, "state": "gone"}))] == ["describe"]
    # a delete maps its before-image; a column that does not hold JSON is a dead letter
    assert norm(change("things", "d", None, before=row))[1].attrs["props"]["change"] == "delete"
    with pytest.raises(EventError, match=r"public\.things .*not JSON, for the path \$\.where\['uri'\]"):
        norm(change("things", "c", {**row, "src": "not json"}))


@pytest.mark.parametrize(("event", "message"), [
    ({"kind": "file", "op": "read", "ts": 1, "uri": {"field": "p", "json": "uri"}},
     r"event #1 \(file\): field 'uri': json: a JSON path starts with '\$'"),
    ({"kind": "file", "op": "read", "ts": 1, "uri": {"field": "p", "json": "$.a[?(@.x)]"}},
     r"field 'uri': json: JSON path .* cannot read"),
    ({"kind": "file", "op": "read", "ts": {"source": "commit_time"}, "uri": "x:///y"},
     r"field 'ts': source: source must be one of"),
    ({"kind": "file", "op": "read", "ts": 1, "uri": "x:///y", "when": {"c": {"bigger": 1}}},
     r"when\.c: unknown key\(s\) bigger \(known: equals, in, is_null"),
    ({"kind": "file", "op": "read", "ts": 1, "uri": {"template": "x:///{a}", "json": "$.b"}},
     r"json applies to a column's value"),
    ({"kind": "describe", "op": "job", "ts": 1}, r"event #1 \(describe\): needs attrs\.name"),
    ({"kind": "file", "op": "read", "ts": 1, "uri": ["a", "b"]}, r"field 'uri': a list is not a value"),
    ({"kind": "nope", "op": "read", "ts": 1}, r"event #1: field 'kind': must be one of file, app"),
    ({"kind": "file", "op": "read", "ts": 1, "uri": {"field": "p", "format": "x:///"}},
     r"field 'uri': format: format puts the value at its one '\{\}'"),
    ({"kind": "file", "op": "read", "ts": 1, "uri": {"field": "p", "json": []}},
     r"field 'uri': json: a list of JSON paths needs at least one"),
    ({"kind": "file", "op": "read", "ts": 1, "uri": {"first": ["a", {"field": "b"}], "json": "$.x"}},
     r"field 'uri': json applies to columns: with values among first"),
])
def test_a_bad_construct_fails_at_start_naming_line_table_and_field(tmp_path: Path, event: dict[str, Any],
                                                                     message: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump({"tables": [{"table": "public.things", "source": "s", "events": [event]}]}))
    with pytest.raises(MappingError, match=rf"{path}, line \d+: table public\.things: .*{message}"):
        load_table_mappings([path])


# -- the MLflow defaults on Debezium-shaped rows ----------------------------------------------------
RUN = {"run_uuid": "r1", "name": "brave-owl-12", "source_type": "UNKNOWN", "source_name": "", "user_id": "bob",
       "status": "RUNNING", "start_time": 1000, "end_time": None, "source_version": "", "deleted_time": None,
       "lifecycle_stage": "active", "artifact_uri": "s3://mlflow/1/r1/artifacts", "experiment_id": 1}


@contextlib.contextmanager
def _graph(home: Path, changes: list[bytes]) -> Iterator[tuple[Stack, Queries]]:
    """The changes through the processor into a fresh store, none of them a dead letter."""
    with open_stack(load_settings(home=home, search={"type": "none"})) as stack:
        stack.bus.produce(raw_topic("debezium"), [Record(value=c) for c in changes])
        stats = stack.processor.catch_up()
        assert stats.dead_lettered == 0, stats.errors
        yield stack, Queries(stack.store, stack.rules)


@pytest.mark.parametrize(("source_type", "source", "uri", "version"), [
    ("local", {"uri": "/data/loans.csv"}, "file:///data/loans.csv", "d1"),
    ("s3", {"uri": "s3://bk/loans.parquet"}, "s3://bk/loans.parquet", "d1"),
    ("http", {"url": "https://example.com/loans.csv"}, "https://example.com/loans.csv", "d1"),
    ("delta_table", {"path": "s3://bk/tables/loans", "delta_table_version": 7}, "s3://bk/tables/loans", "7"),
    ("delta_table", {"delta_table_name": "main.credit.loans", "delta_table_version": 2},
     "spark-table:///main.credit.loans", "2"),
    ("delta_table", {"path": "/dbfs/loans"}, "file:///dbfs/loans", "d1"),  # no version: the digest
    ("spark", {"path": "hdfs://nn/data/loans"}, "hdfs://nn/data/loans", "d1"),
    ("spark", {"table_name": "credit.loans"}, "spark-table:///credit.loans", "d1"),
    ("spark", {"sql": "SELECT * FROM loans"}, None, None),  # names no data: no read, no error
    ("uc_volume", {"path": "/Volumes/main/credit/raw/loans.csv"}, "file:///Volumes/main/credit/raw/loans.csv", "d1"),
    ("hugging_face", {"path": "stanfordnlp/imdb", "config_name": None, "data_dir": None, "data_files": None,
                      "split": "train", "revision": None}, "hf://datasets/stanfordnlp/imdb", "d1"),
    ("code", {"tags": {"mlflow.user": "bob"}}, None, None),
])
def test_an_mlflow_dataset_is_read_from_its_source_whatever_kind_of_source_it_is(
        source_type: str, source: dict[str, Any], uri: str | None, version: str | None) -> None:
    row = {"dataset_uuid": "u1", "experiment_id": 1, "name": "loans", "digest": "d1",
           "dataset_source_type": source_type, "dataset_source": json.dumps(source), "schema": None, "profile": None}
    events = normalize(change("datasets", "c", row))
    reads = [(e.uri, e.attrs.get("version")) for e in events if e.kind == "file" and e.op == "read"]
    assert reads == ([(uri, version)] if uri else [])
    # the dataset node itself is declared whatever its source: the run's link to it stays
    assert ("create", "mlflow-dataset:///u1") in {(e.op, e.uri) for e in events if e.kind == "file"}


def test_a_run_reading_an_http_dataset_reaches_its_url_in_the_graph(tmp_path: Path) -> None:
    url = "https://example.com/loans.csv"
    with _graph(tmp_path, [
        change("runs", "c", RUN, ts=1001),
        change("datasets", "c", {"dataset_uuid": "u1", "experiment_id": 1, "name": "loans", "digest": "d1",
                                 "dataset_source_type": "http", "dataset_source": json.dumps({"url": url})}, ts=1002),
        change("inputs", "c", {"input_uuid": "i1", "source_type": "DATASET", "source_id": "u1",
                               "destination_type": "RUN", "destination_id": "r1"}, ts=1003)]) as (_stack, q):
        g = q.gdpr([url])
        assert [(d["uri"], d["version"]) for d in g["data"]] == [(url, "d1")]
        assert "mlflow:r1" in {a["app_id"] for a in g["apps"]}


def test_a_restored_run_is_its_status_again_and_a_deleted_one_is_killed(tmp_path: Path) -> None:
    done = {**RUN, "status": "FINISHED", "end_time": 5000}
    deleted = {**done, "lifecycle_stage": "deleted", "deleted_time": 9000}
    restored = {**done, "lifecycle_stage": "active", "deleted_time": None}  # MLflow's restore_run
    history = [change("runs", "c", RUN, ts=1001, lsn=1), change("runs", "u", done, ts=5001, lsn=2),
               change("runs", "u", deleted, ts=9001, lsn=3)]
    with _graph(tmp_path, history) as (_stack, q):
        app = q.footprint("mlflow:r1")["app"]
        assert (app["state"], app["ended_ts"], app["props"]["lifecycle_stage"]) == ("killed", 9000, "deleted")
    # restored (at 12 s): finished again, when it finished; in any order of the changes
    for i, order in enumerate([[*history, change("runs", "u", restored, ts=12000, lsn=4)],
                               [change("runs", "u", restored, ts=12000, lsn=4), *history[::-1]]]):
        with _graph(tmp_path / f"restored{i}", order) as (_stack, q):
            app = q.footprint("mlflow:r1")["app"]
            assert (app["state"], app["ended_ts"], app["props"]["lifecycle_stage"]) == ("finished", 5000, "active")
    # a run deleted while running, restored: running again, with no end
    running_deleted = {**RUN, "lifecycle_stage": "deleted", "deleted_time": 3000}
    with _graph(tmp_path / "running", [
        change("runs", "c", RUN, ts=1001, lsn=1), change("runs", "u", running_deleted, ts=3001, lsn=2),
        change("runs", "u", RUN, ts=4000, lsn=3)]) as (_stack, q):
        app = q.footprint("mlflow:r1")["app"]
        assert (app["state"], app["ended_ts"]) == ("started", None)


def _model_version(name: str, version: int, **row: Any) -> dict[str, Any]:
    return {"name": name, "version": version, "creation_time": 2000, "last_updated_time": 2000, "description": None,
            "user_id": "bob", "current_stage": "None", "source": "s3://mlflow/1/r1/artifacts/model", "run_id": "r1",
            "run_link": None, "status": "READY", "status_message": None, "storage_location": None, **row}


def test_a_deleted_or_renamed_registered_model_leaves_only_the_live_name(tmp_path: Path) -> None:
    source = "s3://mlflow/1/r1/artifacts/model"
    registered = {"name": "scoring", "creation_time": 2000, "last_updated_time": 2000, "description": None}
    made = [change("runs", "c", RUN, ts=1001, lsn=1), change("registered_models", "c", registered, ts=2001, lsn=2),
            change("model_versions", "c", _model_version("scoring", 1), ts=2002, lsn=3)]
    # delete_registered_model: its row and (ORM cascade) its versions' rows; a delete carries the key only
    dropped = [change("model_versions", "d", None, before={"name": "scoring", "version": 1}, ts=3000, lsn=4),
               change("registered_models", "d", None, before={"name": "scoring"}, ts=3000, lsn=5)]
    with _graph(tmp_path / "drop", made + dropped) as (_stack, q):
        models = {(m["uri"], m["version"], m["deleted"]) for m in q.gdpr([source])["models"]}
        assert ("mlflow://registry/models/scoring", "1", True) in models
        assert not any(not deleted for uri, _, deleted in models if uri.startswith("mlflow://registry"))
    # rename_registered_model (a new key: Debezium sends a delete of the old and a create of the new row,
    # for the model and for each of its versions): only the new name is live
    renamed = [change("model_versions", "d", None, before={"name": "scoring", "version": 1}, ts=4000, lsn=6),
               change("model_versions", "c", _model_version("scoring-v2", 1, last_updated_time=4000), ts=4000, lsn=7),
               change("registered_models", "d", None, before={"name": "scoring"}, ts=4000, lsn=8),
               change("registered_models", "c", {**registered, "name": "scoring-v2", "last_updated_time": 4000},
                      ts=4000, lsn=9)]
    with _graph(tmp_path / "rename", made + renamed) as (_stack, q):
        models = {(m["uri"], m["version"], m["deleted"]) for m in q.gdpr([source])["models"]
                  if m["uri"].startswith("mlflow://registry")}
        assert models == {("mlflow://registry/models/scoring", "1", True),
                          ("mlflow://registry/models/scoring-v2", "1", False)}


def test_deleted_run_and_registered_model_tags_are_removed(tmp_path: Path) -> None:
    tag = {"key": "team", "value": "credit", "run_uuid": "r1"}
    commit = {"key": "mlflow.source.git.commit", "value": "c0ffee", "run_uuid": "r1"}
    model_tag = {"name": "scoring", "key": "owner", "value": "bob"}
    with _graph(tmp_path, [
        change("runs", "c", RUN, ts=1001, lsn=1), change("tags", "c", tag, ts=1002, lsn=2),
        change("tags", "c", commit, ts=1003, lsn=3),
        change("registered_models", "c", {"name": "scoring", "creation_time": 2000, "last_updated_time": 2000,
                                          "description": None}, ts=2001, lsn=4),
        change("registered_model_tags", "c", model_tag, ts=2002, lsn=5),
        change("registered_model_tags", "c", {**model_tag, "key": "stays"}, ts=2003, lsn=6)]) as (stack, q):
        app = q.footprint("mlflow:r1")["app"]
        assert app["props"]["tag.team"] == "credit" and app["git_commit"] == "c0ffee"
        node = "artifact:mlflow://registry/models/scoring"
        assert stack.store.nodes([node])[node].props["tag.owner"] == "bob"
    deleted = [
        change("runs", "c", RUN, ts=1001, lsn=1), change("tags", "c", tag, ts=1002, lsn=2),
        change("tags", "c", commit, ts=1003, lsn=3),
        change("tags", "d", None, before={"key": "team", "run_uuid": "r1"}, ts=3000, lsn=7),
        change("tags", "d", None, before={"key": "mlflow.source.git.commit", "run_uuid": "r1"}, ts=3000, lsn=8),
        change("registered_models", "c", {"name": "scoring", "creation_time": 2000, "last_updated_time": 2000,
                                          "description": None}, ts=2001, lsn=4),
        change("registered_model_tags", "c", model_tag, ts=2002, lsn=5),
        change("registered_model_tags", "c", {**model_tag, "key": "stays"}, ts=2003, lsn=6),
        change("registered_model_tags", "d", None, before={"name": "scoring", "key": "owner"}, ts=3000, lsn=9)]
    with _graph(tmp_path / "deleted", deleted) as (stack, q):
        app = q.footprint("mlflow:r1")["app"]
        assert app["props"].get("tag.team") is None and app["git_commit"] is None  # removed
        node = "artifact:mlflow://registry/models/scoring"
        props = stack.store.nodes([node])[node].props
        assert props.get("tag.owner") is None and props["tag.stays"] == "bob"


def test_a_failed_logged_model_or_registration_is_not_written_or_linked(tmp_path: Path) -> None:
    def logged(model_id: str, status: int) -> dict[str, Any]:
        return {"model_id": model_id, "experiment_id": 1, "name": "model", "artifact_location": f"s3://m/{model_id}",
                "creation_timestamp_ms": 2000, "last_updated_timestamp_ms": 2000 + status, "status": status,
                "lifecycle_stage": "active", "model_type": None, "source_run_id": "r1", "status_message": None}

    def output(model_id: str) -> dict[str, Any]:
        return {"input_uuid": f"o-{model_id}", "source_type": "RUN_OUTPUT", "source_id": "r1",
                "destination_type": "MODEL_OUTPUT", "destination_id": model_id, "step": 0}

    changes = [
        change("runs", "c", RUN, ts=1001, lsn=1),
        # log_model: the model row (PENDING), the run's output row, then the model READY, or FAILED
        change("logged_models", "c", logged("m-ok", 1), ts=2001, lsn=2),
        change("inputs", "c", output("m-ok"), ts=2002, lsn=3),
        change("logged_models", "u", logged("m-ok", 2), ts=2003, lsn=4),
        change("logged_models", "c", logged("m-bad", 1), ts=2004, lsn=5),
        change("inputs", "c", output("m-bad"), ts=2005, lsn=6),
        change("logged_models", "u", {**logged("m-bad", 3), "status_message": "boom"}, ts=2006, lsn=7),
        change("logged_model_params", "c", {"model_id": "m-ok", "experiment_id": 1, "param_key": "depth",
                                            "param_value": "4"}, ts=2007, lsn=8),
        change("logged_model_tags", "c", {"model_id": "m-ok", "experiment_id": 1, "tag_key": "flavor",
                                          "tag_value": "pyfunc"}, ts=2008, lsn=9),
        change("logged_model_tags", "c", {"model_id": "m-ok", "experiment_id": 1, "tag_key": "gone",
                                          "tag_value": "x"}, ts=2008, lsn=10),
        change("logged_model_tags", "d", None, before={"model_id": "m-ok", "tag_key": "gone"}, ts=2009, lsn=11),
        # a registration that failed is no version made from its source; a pending one is not yet
        change("model_versions", "c", _model_version("scoring", 1, source="models:/m-ok",
                                                     status="FAILED_REGISTRATION"), ts=2010, lsn=12),
        change("model_versions", "c", _model_version("scoring", 2, source="models:/m-ok",
                                                     status="PENDING_REGISTRATION"), ts=2011, lsn=13),
        change("model_versions", "c", _model_version("scoring", 3, source="models:/m-ok"), ts=2012, lsn=14)]
    with _graph(tmp_path, changes) as (stack, q):
        written = {f["uri"] for f in q.footprint("mlflow:r1")["files"] if any("OUTPUT" in t for t in f["types"])}
        assert written == {"models:///m-ok"}
        nodes = stack.store.nodes(["artifact:models:///m-ok", "artifact:models:///m-bad"])
        assert nodes["artifact:models:///m-bad"].props["status"] == "FAILED"
        assert nodes["artifact:models:///m-bad"].props["status_message"] == "boom"
        ok = nodes["artifact:models:///m-ok"].props
        assert (ok["status"], ok["param.depth"], ok["tag.flavor"]) == ("READY", "4", "pyfunc")
        assert ok.get("tag.gone") is None
        models = {(m["uri"], m["version"]) for m in q.gdpr(["models:/m-ok"])["models"]}
        assert ("mlflow://registry/models/scoring", "3") in models
        assert not {("mlflow://registry/models/scoring", "1"), ("mlflow://registry/models/scoring", "2")} & models


def test_a_snapshot_of_a_run_its_dataset_and_its_ready_model_keeps_the_model_downstream_of_the_data(
        tmp_path: Path) -> None:
    # a snapshot reads rows after the facts: the input row at 5000, the model (created at 2000) at 5001
    model = {"model_id": "m-1", "experiment_id": 1, "name": "model", "artifact_location": "s3://m/m-1",
             "creation_timestamp_ms": 2000, "last_updated_timestamp_ms": 2100, "status": 2,
             "lifecycle_stage": "active", "model_type": None, "source_run_id": "r1", "status_message": None}
    source = {"uri": "s3://bk/loans.csv"}
    with _graph(tmp_path, [
        change("runs", "r", {**RUN, "status": "FINISHED", "end_time": 3000}, ts=5000, lsn=1),
        change("datasets", "r", {"dataset_uuid": "u1", "experiment_id": 1, "name": "loans", "digest": "d1",
                                 "dataset_source_type": "s3", "dataset_source": json.dumps(source)}, ts=5000, lsn=1),
        change("inputs", "r", {"input_uuid": "i1", "source_type": "DATASET", "source_id": "u1",
                               "destination_type": "RUN", "destination_id": "r1"}, ts=5000, lsn=1),
        change("logged_models", "r", model, ts=5001, lsn=1)]) as (_stack, q):
        assert "models:///m-1" in {m["uri"] for m in q.gdpr(["s3://bk/loans.csv"])["models"]}
