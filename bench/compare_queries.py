"""Query latency of this tree's embedded store against another revision's, side by side in one run.

    python -m bench.compare_queries --against REV [--edges 1000000] [--targets 150] [--keep DIR]

Loads ``provenance/graph/embedded.py`` of git revision REV next to the current one (the queries,
the model and the graph are this tree's), opens the same graph with both, and runs impact and GDPR
on the same raw-data targets in both, alternating which goes first. Prints p50 and p95 over the
answers with at most 1,000 items (the scope of the query target) and their ratios. The graph is
built as `bench.queries` builds it, or reused from ``--keep``. Opening the graph with the other
revision may add indexes that revision had (and this tree drops again).
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench.queries import load, pct, size
from provenance.graph import embedded
from provenance.graph.queries import Limits, LineageQueries
from provenance.processor.rules import default_rules

console = Console(width=160)


def store_source(rev: str) -> str | None:
    """``provenance/graph/embedded.py`` as it was at ``rev``, or None if git has no such file there."""
    r = subprocess.run(["git", "show", f"{rev}:provenance/graph/embedded.py"], capture_output=True, text=True,
                       cwd=Path(__file__).resolve().parent, check=False)
    return r.stdout if r.returncode == 0 else None


def store_module(rev: str, source: str, where: Path) -> ModuleType:
    """The embedded store module as it was at ``rev``."""
    path = where / f"embedded_{rev.replace('/', '_')}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"embedded_at_{rev}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--against", required=True, help="git revision whose embedded store to compare with")
    ap.add_argument("--edges", type=int, default=1_000_000)
    ap.add_argument("--targets", type=int, default=150)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--keep", type=Path, default=None, help="keep the built graph here and reuse it next time")
    args = ap.parse_args()
    source = store_source(args.against)
    if source is None:
        ap.error(f"git has no provenance/graph/embedded.py at revision {args.against!r}")
    with tempfile.TemporaryDirectory(prefix="prov-cmp-") as scratch:
        other = store_module(args.against, source, Path(scratch))
        path, built, _, tmp = load(args.edges, args.keep)
        try:
            rules = default_rules()
            sides = {args.against: LineageQueries(other.EmbeddedStore(path), rules),
                     "this tree": LineageQueries(embedded.EmbeddedStore(path), rules)}
            limits = Limits(depth=10, limit=1000)
            targets = random.Random(args.seed).sample(built.raws, min(args.targets, len(built.raws)))
            times: dict[tuple[str, str], list[float]] = {(s, q): [] for s in sides for q in ("impact", "gdpr")}
            with Progress(TextColumn("queries"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=console, transient=True) as bar:
                task = bar.add_task("run", total=len(targets))
                for i, uri in enumerate(targets):
                    order = list(sides.items()) if i % 2 == 0 else list(sides.items())[::-1]
                    for name, q in order:
                        for query in ("impact", "gdpr"):
                            t0 = time.perf_counter()
                            r: dict[str, Any] = (q.impact(artifact=uri, limits=limits) if query == "impact"
                                                 else q.gdpr([uri], limits=limits))
                            ms = (time.perf_counter() - t0) * 1000
                            if size(r) <= 1000:
                                times[(name, query)].append(ms)
                    bar.advance(task)
        finally:
            if tmp is not None:
                tmp.cleanup()
    table = Table(title=f"{args.edges:,}-edge graph, {len(targets)} raw-data targets (ms, answers ≤ 1,000 items)")
    for col in ("query", "n", f"p50 {args.against}", "p50 this tree", "ratio", f"p95 {args.against}",
                "p95 this tree", "ratio"):
        table.add_column(col, justify="right")
    for query in ("impact", "gdpr"):
        a, b = times[(args.against, query)], times[("this tree", query)]
        if not a or not b:
            continue
        table.add_row(query, str(len(b)), f"{statistics.median(a):.1f}", f"{statistics.median(b):.1f}",
                      f"{statistics.median(b) / statistics.median(a):.2f}", f"{pct(a, 0.95):.1f}",
                      f"{pct(b, 0.95):.1f}", f"{pct(b, 0.95) / pct(a, 0.95):.2f}")
    console.print(table)


if __name__ == "__main__":
    main()
