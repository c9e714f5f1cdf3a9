"""Where the processor's time goes, per event: decode+infer, hand-over, store writes by statement.

    python -m bench.breakdown [--events 300000] [--batch 20000]

Runs the two sides of the pipelined processor one after the other on the same synthetic history
(so neither waits for the other) and times every SQL statement the store writer issues. Then it
replays the writer's writes alone (every INSERT, DELETE and COMMIT with the same parameters, into an
empty store): the floor of the store side with this schema, whatever the Python around it costs.
"""

from __future__ import annotations

import argparse
import pickle
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.synth import pipeline_events
from provenance.config import load_settings
from provenance.graph.embedded import EmbeddedStore
from provenance.graph.model import FactBatch
from provenance.processor.runner import batch_gc, infer_records
from provenance.stack import open_stack

console = Console(width=160)


class TimedConnection:
    """Wraps the store's connection and adds up the time of each statement."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.times: dict[str, float] = {}
        self.writes: list[tuple[Any, str, tuple[Any, ...]]] = []  # (execute or executemany, sql, args)

    def _timed(self, fn: Any, sql: str, *args: Any) -> Any:
        if sql.lstrip().split(None, 1)[0].upper() in ("INSERT", "DELETE", "BEGIN", "COMMIT"):
            args = tuple(list(a) if fn == self.conn.executemany else a for a in args)  # rows may be a generator
            self.writes.append((fn.__name__, sql, args))
        t0 = time.perf_counter()
        try:
            return fn(sql, *args)
        finally:
            key = " ".join(sql.split())[:72]
            self.times[key] = self.times.get(key, 0.0) + time.perf_counter() - t0

    def execute(self, sql: str, *args: Any) -> Any:
        return self._timed(self.conn.execute, sql, *args)

    def executemany(self, sql: str, *args: Any) -> Any:
        return self._timed(self.conn.executemany, sql, *args)

    def close(self) -> None:
        self.conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--batch", type=int, default=20_000)
    args = ap.parse_args()
    records = [("prov.raw.canonical", ln.encode()) for ln in pipeline_events(args.events)]
    n = len(records)
    with tempfile.TemporaryDirectory(prefix="prov-breakdown-") as d, \
            open_stack(load_settings(home=Path(d), batch_size=args.batch, processor_workers=0)) as stack, \
            batch_gc():  # as the processor's loop and its workers collect garbage
        t0 = time.perf_counter()
        chunks = [infer_records(records[i : i + args.batch], stack.rules, stack.normalizers)
                  for i in range(0, n, args.batch)]
        worker = time.perf_counter() - t0
        t0 = time.perf_counter()
        blobs = [pickle.dumps((c[0].to_bytes(), c[1], c[2])) for c in chunks]  # as a worker answers
        chunks = [(FactBatch.from_bytes(f), dead, k) for f, dead, k in map(pickle.loads, blobs)]
        handover = time.perf_counter() - t0
        assert isinstance(stack.store, EmbeddedStore)
        timed = TimedConnection(stack.store._conn)
        stack.store._conn = timed  # type: ignore[assignment]
        t0 = time.perf_counter()
        for i, (facts, _, _) in enumerate(chunks):
            stack.processor._apply(facts, {"bench": i})
        writer = time.perf_counter() - t0
        stack.store._conn = timed.conn
    sql = sum(timed.times.values())
    with tempfile.TemporaryDirectory(prefix="prov-breakdown-") as d:
        empty = EmbeddedStore(Path(d) / "graph.db")
        t0 = time.perf_counter()
        for method, statement, params in timed.writes:
            getattr(empty._conn, method)(statement, *params)
        floor = time.perf_counter() - t0
        empty.close()
    table = Table(title=f"Processor cost per event ({n:,} synthetic events, batch {args.batch})")
    table.add_column("part")
    table.add_column("µs/event", justify="right")
    for label, seconds in [("worker: decode + validate + infer", worker),
                           ("hand-over: the batch to bytes and back", handover),
                           ("store writer: total", writer),
                           ("  of which SQLite", sql),
                           ("  of which Python (resolution, ids, rows)", writer - sql),
                           ("the same writes replayed alone (the store side's floor)", floor)]:
        table.add_row(label, f"{seconds / n * 1e6:.1f}")
    for stmt, seconds in sorted(timed.times.items(), key=lambda kv: -kv[1])[:8]:
        table.add_row(f"    {stmt}", f"{seconds / n * 1e6:.1f}")
    console.print(table)
    console.print(f"Store side's floor: {n / floor:,.0f} events/s at most with this schema on this machine "
                  f"({floor / n * 1e6:.1f} µs/event of SQLite writes, nothing else).")


if __name__ == "__main__":
    main()
