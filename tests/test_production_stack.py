"""End to end on the production adapters, each on a real server speaking its protocol:

PostgreSQL (logical WAL) → Debezium engine (`provenance cdc`) → Kafka (Tansu) → two processors
(`provenance process`) → Neo4j adapter (ArcadeDB's Bolt server) and Elasticsearch adapter (noida-db)
→ the API answers footprint, impact, audit and GDPR exactly as the embedded stack does for the same
history (the same raw records, applied by the embedded default).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import yaml
from fastapi.testclient import TestClient

from provenance.api.app import create_app
from provenance.bus.kafka import KafkaBus
from provenance.bus.port import raw_topic, read_topic
from provenance.config import load_settings
from provenance.stack import open_stack
from tests.servers import ARCADEDB_PASSWORD, Server, arcadedb_create_database, start_tansu
from tests.test_cdc import DDL, PIPELINE_SQL

ROOT = Path(__file__).resolve().parent.parent
TABLES = ["yarn_app_provenance_log", "hops_file_provenance_log", "runs", "registered_models", "model_versions"]
LIVE_SQL = """
UPDATE runs SET status = 'FINISHED', end_time = 1772442150000 WHERE run_uuid = 'r1';
INSERT INTO yarn_app_provenance_log (app_id, app_name, app_user, app_state, state_timestamp, project_name)
VALUES ('application_1_0002', 'score', 'carol', 'RUNNING', 1772442400000, 'loan');
INSERT INTO hops_file_provenance_log (inode_id, operation, io_timestamp, io_app_id, io_user_name, path)
VALUES (9, 'ACCESS_DATA', 1772442410000, 'application_1_0002', 'carol', '/Projects/loan/Raw/applications.csv'),
       (10, 'CREATE', 1772442420000, 'application_1_0002', 'carol', '/Projects/loan/Deployments/scoring/batch.csv');
"""
QUERIES = [
    ("/api/apps/application_1_0001/footprint", {}),
    ("/api/impact", {"app": "application_1_0001"}),
    ("/api/impact", {"artifact": "hopsfs:///Projects/loan/Raw/applications.csv"}),
    ("/api/audit", {"uri": "mlflow://registry/models/scoring@1"}),
    ("/api/audit", {"uri": "hopsfs:///Projects/loan/Deployments/scoring/batch.csv"}),
    ("/api/gdpr", {"uri": "hopsfs:///Projects/loan/Raw/applications.csv"}),
    ("/api/impact", {"app": "application_1_0001", "as_of": "2026-03-02T09:01:00Z"}),  # time travel
]


def _config(home: Path, values: dict[str, Any]) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def _cli(args: list[str], config: Path, home: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PROVENANCE_CONFIG": str(config), "PROVENANCE_HOME": str(home)}
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "provenance.cli", *args], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)


def _answers(settings: Any) -> list[Any]:
    with TestClient(create_app(settings, auth=False), base_url="http://localhost") as client:
        out = []
        for path, params in QUERIES:
            r = client.get(path, params=params)
            assert r.status_code == 200, (path, params, r.text)
            out.append(r.json())
        hits = client.get("/api/search", params={"q": "applications", "sort": "recent"}).json()
        out.append(sorted(h["id"] for h in hits["hits"]))
        return out


def test_postgres_to_kafka_to_neo4j_and_elasticsearch_answers_as_the_embedded_stack(
        postgres: Any, arcadedb: Server, noida: str, tmp_path: Path) -> None:
    broker = start_tansu()
    try:
        _run(postgres, arcadedb, noida, broker.address, tmp_path)
    finally:
        broker.stop()


def _run(postgres: Any, arcadedb: Server, noida: str, bootstrap: str, tmp_path: Path) -> None:
    database = f"meta_{uuid.uuid4().hex[:8]}"
    port = postgres.extra["port"]
    with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres", autocommit=True) as c:
        c.execute(f"CREATE DATABASE {database}")
    dsn = f"host=127.0.0.1 port={port} user=postgres dbname={database}"
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(DDL.read_text())
        c.execute(PIPELINE_SQL)
    graph_db = f"g{uuid.uuid4().hex[:10]}"
    arcadedb_create_database(arcadedb, graph_db)
    home = tmp_path / "prod"
    config = _config(home, {
        "bus": {"type": "kafka", "bootstrap_servers": bootstrap, "partitions": 4, "session_timeout_ms": 6000},
        "store": {"type": "neo4j", "uri": arcadedb.address, "user": "root", "password": ARCADEDB_PASSWORD,
                  "database": graph_db},
        "search": {"type": "elasticsearch", "url": noida, "index": f"prov-{uuid.uuid4().hex[:8]}"},
        "cdc": {"sources": [{"name": "meta", "host": "127.0.0.1", "port": port, "database": database,
                             "tables": [f"public.{t}" for t in TABLES]}]},
    })
    bus = KafkaBus(bootstrap)
    topic = raw_topic("debezium")

    def published() -> int:
        return sum(bus.end_offsets(topic).values()) if topic in bus.topics() else 0

    log = tmp_path / "cdc.log"
    cdc = _cli(["cdc"], config, home, log)
    try:
        deadline = time.monotonic() + 120
        while published() < 8 and time.monotonic() < deadline:
            assert cdc.poll() is None, log.read_text()[-3000:]
            time.sleep(0.3)
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute(LIVE_SQL)
        while published() < 12 and time.monotonic() < deadline:
            time.sleep(0.3)
        assert published() == 12, log.read_text()[-3000:]
    finally:
        cdc.terminate()
        cdc.wait(60)
    assert cdc.returncode == 0, log.read_text()[-3000:]

    # two processors of one group apply the topic's partitions to Neo4j and Elasticsearch
    logs = [tmp_path / f"process{i}.log" for i in range(2)]
    procs = [_cli(["process", "--until-caught-up"], config, home, lg) for lg in logs]
    for p, lg in zip(procs, logs, strict=True):
        p.wait(180)
        assert p.returncode == 0, lg.read_text()[-3000:]
    prod = load_settings(config, home=home)
    with open_stack(prod) as stack:
        from provenance.processor.runner import PROCESSOR_GROUP

        assert sum(stack.store.applied_offsets(PROCESSOR_GROUP).values()) == 12
        prod_dump = stack.store.dump()

    # the embedded default, given the same raw records
    records = read_topic(bus, topic, 1000)
    assert len(records) == 12
    ref_home = tmp_path / "embedded"
    ref = load_settings(home=ref_home)
    with open_stack(ref) as stack:
        from provenance.bus.port import Record

        stack.bus.produce(topic, [Record(value=m.value, key=m.key) for m in records])
        stats = stack.processor.catch_up()
        assert stats.dead_lettered == 0, stats.errors
        ref_dump = stack.store.dump()
    bus.close()

    assert prod_dump == ref_dump  # the same graph, row for row
    prod_answers, ref_answers = _answers(prod), _answers(ref)
    for (path, params), a, b in zip(QUERIES, prod_answers, ref_answers, strict=False):
        assert a == b, (path, params)
    assert prod_answers[-1] == ref_answers[-1] and prod_answers[-1]  # search hits too
    # and the answers say something: the audit of the model reaches the raw applications
    assert "applications.csv" in str(prod_answers[3])
    assert "mlflow://registry/models/scoring" in str(prod_answers[5])
