"""End-to-end ingest: raw events appended to the embedded log → applied to the store (queryable).

    python -m bench.ingest [--events 1000000] [--batch 5000]

Runs the same synthetic history three times in one go — decode+infer inline, in a worker process
pipelined with the store writes, and pipelined with the search index kept current too (the default
configuration) — and prints rates, their ratios and the store's size on disk.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench.synth import pipeline_events
from provenance.bus.port import Record, raw_topic
from provenance.config import load_settings
from provenance.graph.queries import LineageQueries
from provenance.stack import open_stack

console = Console(width=160)


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())


def run(lines: list[bytes], workers: int, batch: int, label: str, search: bool = False) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="prov-bench-") as d:
        home = Path(d)
        settings = load_settings(home=home, batch_size=batch, processor_workers=workers,
                                 search={"type": "embedded" if search else "none"})
        with open_stack(settings) as s:
            topic = raw_topic("canonical")
            with Progress(TextColumn(f"{label}: {{task.description}}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=console, transient=True) as bar:
                task = bar.add_task("append", total=len(lines))
                t0 = time.perf_counter()
                for i in range(0, len(lines), 20_000):
                    chunk = lines[i : i + 20_000]
                    s.bus.produce(topic, [Record(value=v) for v in chunk])
                    bar.advance(task, len(chunk))
                append_s = time.perf_counter() - t0
                task2 = bar.add_task("process", total=len(lines))
                batch_rates: list[float] = []

                def tick(st: object) -> None:
                    bar.advance(task2, st.records)  # type: ignore[attr-defined]
                    batch_rates.append(st.records / max(st.seconds, 1e-9))  # type: ignore[attr-defined]

                t0 = time.perf_counter()
                stats = s.processor.catch_up(tick)
                process_s = time.perf_counter() - t0
            assert stats.records == len(lines) and stats.dead_lettered == 0
            # queryable: one footprint answers
            q = LineageQueries(s.store, s.rules)
            nodes, _ = s.store.find_nodes("app", limit=1)
            q.footprint(nodes[0].id)
            store_stats = s.store.stats()
        # sizes after close: SQLite checkpoints the WAL into the database file then
        log_mb = (home / "log.db").stat().st_size / 2**20
        store_mb = (home / "graph.db").stat().st_size / 2**20
        return {
            "events": len(lines),
            "append_per_s": len(lines) / append_s,
            "process_s": process_s,
            "process_per_s": len(lines) / process_s,
            "store_apply_median_per_s": statistics.median(batch_rates),
            "log_mb": log_mb,
            "store_mb": store_mb,
            "edges": store_stats["edges"],
            "nodes": store_stats["nodes"],
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=5000)
    args = ap.parse_args()
    with console.status("generating synthetic history"):
        lines = [ln.encode() for ln in pipeline_events(args.events)]
    results = {
        "inline (workers=0)": run(lines, 0, args.batch, "inline"),
        "pipelined (workers=1)": run(lines, 1, args.batch, "pipelined"),
        "pipelined + search index": run(lines, 1, args.batch, "pipelined + search", search=True),
    }
    table = Table(title=f"Ingest of {len(lines):,} synthetic events (log → queryable), batch {args.batch}")
    for col in ("mode", "append ev/s", "process s", "end-to-end ev/s", "store-side ev/s (median batch)",
                "log MB", "store MB", "nodes", "edges"):
        table.add_column(col, justify="right")
    for mode, r in results.items():
        table.add_row(mode, f"{r['append_per_s']:,.0f}", f"{r['process_s']:.1f}", f"{r['process_per_s']:,.0f}",
                      f"{r['store_apply_median_per_s']:,.0f}", f"{r['log_mb']:.0f}", f"{r['store_mb']:.0f}",
                      f"{r['nodes']:,}", f"{r['edges']:,}")
    console.print(table)
    a, b = results["inline (workers=0)"], results["pipelined (workers=1)"]
    c = results["pipelined + search index"]
    console.print(f"pipelined / inline end-to-end rate: {b['process_per_s'] / a['process_per_s']:.2f}x; "
                  f"target 50,000 ev/s: {b['process_per_s'] / 50_000:.2f} of it; with the search index kept "
                  f"current: {c['process_per_s']:,.0f} ev/s ({c['process_per_s'] / b['process_per_s']:.2f}x)")


if __name__ == "__main__":
    main()
