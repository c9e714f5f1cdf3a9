"""Latency of the four lineage queries on synthetic ML-pipeline graphs (embedded store).

    python -m bench.queries [--edges 1000000 10000000] [--samples 200]

For each graph size: bulk-load, read the store file once (as a running server has it in the page
cache; ``--cold`` skips this), then time footprint / impact / audit (upstream) / GDPR on random
targets (depth 10, 1,000 results a page), now and as of the middle of the history. Prints p50/p95/
max per query, p95 over the answers with at most 1,000 items, and the store's size on disk.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench.graphs import EDGES_PER_PIPELINE, Built, build
from provenance.graph.embedded import EmbeddedStore
from provenance.graph.model import NEVER
from provenance.graph.queries import Limits, LineageQueries
from provenance.processor.rules import default_rules

console = Console(width=170)


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def size(result: Any) -> int:
    """Items in an answer: a typed answer (this tree) or a dict (an earlier revision, bench.compare_queries)."""
    totals = result["totals"] if isinstance(result, dict) else result.totals
    return sum(totals.values())


def measure(fn: Callable[[], dict[str, Any]]) -> tuple[float, dict[str, Any]]:
    t0 = time.perf_counter()
    r = fn()
    return (time.perf_counter() - t0) * 1000, r


def load(edges: int, keep: Path | None) -> tuple[Path, Built, float, tempfile.TemporaryDirectory[str] | None]:
    """Build the graph, or reuse one kept by an earlier run with ``--keep DIR``."""
    tmp = None if keep else tempfile.TemporaryDirectory(prefix="prov-qbench-")
    where = keep or Path(tmp.name)  # type: ignore[union-attr]
    where.mkdir(parents=True, exist_ok=True)
    path, meta = where / f"graph-{edges}.db", where / f"graph-{edges}.json"
    if meta.exists() and path.exists():
        return path, Built(**json.loads(meta.read_text())), 0.0, tmp
    path.unlink(missing_ok=True)
    store = EmbeddedStore(path)
    with Progress(TextColumn(f"{edges:,} edges: loading"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("load", total=max(1, edges // EDGES_PER_PIPELINE))
        t0 = time.perf_counter()
        built = build(store, edges, progress=lambda n: bar.advance(task, n))
        load_s = time.perf_counter() - t0
    store.close()  # checkpoint the WAL so the file size is the store's size
    meta.write_text(json.dumps(dataclasses.asdict(built)))
    return path, built, load_s, tmp


def warm(path: Path) -> None:
    """Read the store file once, so the timings are those of a server whose store is in the page cache
    (a store reused from ``--keep`` may have been evicted by whatever ran since)."""
    with path.open("rb") as f:
        while f.read(1 << 24):
            pass


def bench_size(edges: int, samples: int, seed: int, keep: Path | None, cold: bool = False) -> list[list[str]]:
    rows = []
    path, built, load_s, tmp = load(edges, keep)
    try:
        if not cold:
            warm(path)
        disk_mb = path.stat().st_size / 2**20
        store = EmbeddedStore(path)
        stats = store.stats()
        q = LineageQueries(store, default_rules())
        rng = random.Random(seed)
        mid = (built.first_ts + built.last_ts) // 2
        limits = Limits(depth=10, limit=1000)
        cases: dict[str, Callable[[int], Callable[[], dict[str, Any]]]] = {
            "footprint(app)": lambda t: (lambda a=rng.choice(built.apps): q.footprint(a, t, limits)),
            "impact(raw data)": lambda t: (
                lambda u=rng.choice(built.raws): q.impact(artifact=u, as_of=t, limits=limits)),
            "audit(model)": lambda t: (lambda u=rng.choice(built.deployments): q.upstream(u, t, limits)),
            "gdpr(raw data)": lambda t: (lambda u=rng.choice(built.raws): q.gdpr([u], t, limits)),
        }
        loaded = f"loaded in {load_s:.0f}s" if load_s else "reused from --keep"
        console.print(f"[bold]{edges:,}-edge graph[/bold]: {loaded}; {stats['nodes']:,} nodes, "
                      f"{stats['edges']:,} edges, {stats['touches']:,} touches; {disk_mb:,.0f} MB on disk")
        for name, make in cases.items():
            for label, as_of in (("now", NEVER), ("as of mid", mid)):
                times, small, partial, sizes = [], [], 0, []
                for i in range(samples + 10):
                    try:
                        ms, r = measure(make(as_of))
                    except Exception as exc:  # a target born after as_of: not found is the right answer
                        if "no " not in str(exc):
                            raise
                        continue
                    if i < 10:
                        continue  # warm-up
                    times.append(ms)
                    sizes.append(size(r))
                    partial += bool(getattr(r, "partial", False))
                    if size(r) <= 1000:
                        small.append(ms)
                rows.append([f"{edges:,}", name, label, str(len(times)), f"{statistics.median(times):.1f}",
                             f"{pct(times, 0.95):.1f}", f"{max(times):.0f}",
                             f"{pct(small, 0.95):.1f} ({len(small)})" if small else "—",
                             f"{statistics.median(sizes):.0f} / {max(sizes):,}", str(partial)])
        store.close()
    finally:
        if tmp is not None:
            tmp.cleanup()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--edges", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--keep", type=Path, default=None, help="keep built graphs here and reuse them next time")
    ap.add_argument("--cold", action="store_true", help="do not read the store file into the page cache first")
    args = ap.parse_args()
    table = Table(title="Query latency, embedded store (ms; depth 10, 1,000 items a page)")
    for col in ("graph edges", "query", "time", "n", "p50", "p95", "max", "p95 if ≤1,000 items (n)",
                "items median / max", "partial"):
        table.add_column(col, justify="right")
    for e in args.edges:
        for row in bench_size(e, args.samples, args.seed, args.keep, args.cold):
            table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    main()
