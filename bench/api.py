"""API latency of the four lineage queries next to the same queries called directly, in one run.

    python -m bench.api [--edges 1000000] [--samples 200] [--keep DIR]

The graph is bulk-loaded as in `bench.queries` (``--keep`` reuses one). A real ``provenance serve``
(uvicorn, token auth on) runs over the same store in another process; each sample asks one query
directly through `LineageQueries` in this process and over HTTP (a kept-alive connection), in
alternating order, for the same target. The table gives p50 / p95 of both and their ratio; the
difference is the HTTP, auth, JSON and redaction cost.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench.queries import load, pct
from provenance.access import AccessStore
from provenance.graph.embedded import EmbeddedStore
from provenance.graph.queries import Limits, LineageQueries
from provenance.processor.rules import default_rules

console = Console(width=150)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(home: Path, store: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PROVENANCE_STORE__PATH": str(store), "PROVENANCE_SEARCH__TYPE": "none"}
    proc = subprocess.Popen([sys.executable, "-m", "provenance.cli", "--home", str(home), "serve", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return proc
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"serve did not start: {proc.stderr.read().decode() if proc.stderr else ''}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--edges", type=int, default=1_000_000)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--keep", type=Path, default=None, help="directory to keep (and reuse) the built graph in")
    args = ap.parse_args()
    path, built, load_s, tmp = load(args.edges, args.keep)
    home = Path(tempfile.mkdtemp(prefix="prov-apibench-"))
    access = AccessStore(home / "access.db")
    _, token = access.create_token("bench", admin=True)
    access.close()
    port = free_port()
    proc = serve(home, path, port)
    try:
        store = EmbeddedStore(path)
        q = LineageQueries(store, default_rules())
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Authorization": f"Bearer {token}"}

        def http_get(route: str, params: dict[str, Any]) -> dict[str, Any]:
            conn.request("GET", f"{route}?{urlencode(params, doseq=True)}", headers=headers)
            r = conn.getresponse()
            body = r.read()
            if r.status != 200:
                raise RuntimeError(f"{route} {params}: HTTP {r.status} {body[:300]!r}")
            return json.loads(body)  # type: ignore[no-any-return]

        limits = Limits(depth=10, limit=1000)
        page = {"depth": 10, "limit": 1000}
        rng = random.Random(args.seed)
        cases: dict[str, tuple[list[str], Callable[[str], Any], Callable[[str], Any]]] = {
            "footprint(app)": (built.apps, lambda a: q.footprint(a, limits=limits),
                               lambda a: http_get(f"/api/apps/{a}/footprint", {"limit": 1000})),
            "impact(raw data)": (built.raws, lambda u: q.impact(artifact=u, limits=limits),
                                 lambda u: http_get("/api/impact", {"artifact": u, **page})),
            "audit(model)": (built.deployments, lambda u: q.upstream(u, limits=limits),
                             lambda u: http_get("/api/audit", {"uri": u, **page})),
            "gdpr(raw data)": (built.raws, lambda u: q.gdpr([u], limits=limits),
                               lambda u: http_get("/api/gdpr", {"uri": u, **page})),
        }
        table = Table(title=f"API vs direct, {args.edges:,}-edge graph, {args.samples} samples a query (ms)")
        for col in ("query", "direct p50", "direct p95", "API p50", "API p95", "API / direct (p50)",
                    "API / direct (p95)"):
            table.add_column(col, justify="right")
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=True) as bar:
            for name, (targets, direct, api) in cases.items():
                task = bar.add_task(name, total=args.samples + 10)
                d_times: list[float] = []
                a_times: list[float] = []
                for i in range(args.samples + 10):
                    target = rng.choice(targets)
                    order = [(direct, d_times), (api, a_times)]
                    for fn, sink in order if i % 2 else order[::-1]:
                        t0 = time.perf_counter()
                        fn(target)
                        if i >= 10:  # warm-up
                            sink.append((time.perf_counter() - t0) * 1000)
                    bar.advance(task)
                dp50, dp95 = statistics.median(d_times), pct(d_times, 0.95)
                ap50, ap95 = statistics.median(a_times), pct(a_times, 0.95)
                table.add_row(name, f"{dp50:.1f}", f"{dp95:.1f}", f"{ap50:.1f}", f"{ap95:.1f}", f"{ap50 / dp50:.2f}",
                              f"{ap95 / dp95:.2f}")
        conn.close()
        store.close()
        loaded = f"loaded in {load_s:.0f}s" if load_s else "reused from --keep"
        console.print(f"graph: {loaded}; {path.stat().st_size / 2**20:,.0f} MB")
        console.print(table)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
