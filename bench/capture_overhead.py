"""Wall-time cost of capture: the same job bare, under ``provenance run --capture off``, and under
each capture mode (audit hook; fanotify where permitted, i.e. as root), side by side in one run.

    python -m bench.capture_overhead [--repeats 5] [--parts 30] [--rows 100000] [--files 400] [--tiny 20000]

Three jobs: a pandas/parquet pipeline (parquet shards → features → parquet outputs and a summary),
a file-heavy pure-Python pipeline (CSV shards → JSON, with temporary files), and the worst case
(20k tiny files created, read and deleted). Runs are interleaved and rotated so that drift of the
shared machine hits every mode alike; the table gives medians and ratios against ``--capture off``
(the launcher without capture: what capture itself costs). The capture modes' times include the
content hashes the launcher takes after the job; the last column times that step alone, on the
files one bare run of the job left (what a run that wrote them must hash).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

console = Console(width=200)

PARQUET = """
import os, sys
import numpy as np, pandas as pd
n, rows = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(1)
os.makedirs("raw", exist_ok=True); os.makedirs("features", exist_ok=True)
for i in range(n):
    pd.DataFrame({"id": np.arange(rows), "age": rng.integers(18, 90, rows), "income": rng.lognormal(10.5, 0.5, rows),
                  "amount": rng.uniform(1e3, 5e4, rows), "label": rng.random(rows) < 0.3}).to_parquet(
        f"raw/part_{i}.parquet")
summary = []
for i in range(n):
    df = pd.read_parquet(f"raw/part_{i}.parquet")
    df["dti"] = df["amount"] / df["income"]
    df["log_income"] = np.log1p(df["income"])
    df.to_parquet(f"features/part_{i}.parquet")
    summary.append(df.groupby(df["age"] // 10)["dti"].mean().rename(f"part_{i}"))
full = pd.concat([pd.read_parquet(f"features/part_{i}.parquet") for i in range(n)])
pd.concat(summary, axis=1).to_parquet("summary.parquet")
full.describe().to_csv("stats.csv")
"""

PIPELINE = """
import csv, json, os, random, sys
n = int(sys.argv[1]); rng = random.Random(1)
os.makedirs("raw", exist_ok=True); os.makedirs("features", exist_ok=True)
for i in range(n):
    with open(f"raw/shard_{i}.csv", "w", newline="") as f:
        w = csv.writer(f); w.writerow(["id", "age", "income", "label"])
        for j in range(200):
            w.writerow([j, rng.randint(18, 90), rng.randint(10, 200) * 1000, rng.random() < 0.3])
for i in range(n):
    with open(f"raw/shard_{i}.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    tmp = f"features/.shard_{i}.tmp"
    with open(tmp, "w") as f:
        json.dump([{"age": int(r["age"]) / 100, "income": int(r["income"]) / 1e5} for r in rows], f)
    os.replace(tmp, f"features/shard_{i}.json")
total = 0
for i in range(n):
    with open(f"features/shard_{i}.json") as f:
        total += len(json.load(f))
with open("model.json", "w") as f:
    json.dump({"rows": total}, f)
"""

# the worst case, and the per-operation probe: tiny files created, read and deleted in DIR;
# prints the µs per file operation
TINY = """
import os, sys, time
d, n = sys.argv[1], int(sys.argv[2])
t0 = time.perf_counter()
for i in range(n):
    with open(f"{d}/{i}", "w") as f:
        f.write("x")
for i in range(n):
    with open(f"{d}/{i}") as f:
        f.read()
for i in range(n):
    os.remove(f"{d}/{i}")
print((time.perf_counter() - t0) / (3 * n) * 1e6)
"""


def timed(argv: list[str], cwd: Path) -> float:
    os.sync()  # the previous run's dirty pages must not be written back during this one
    time.sleep(0.5)
    t0 = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


MODES = {"bare python": None, "off": "off", "audit-hook": "audit-hook", "fanotify": "fanotify"}


def measure(script: str, args: list[str], repeats: int, home: Path, modes: list[str]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {m: [] for m in modes}
    for r in range(repeats):
        k = r % len(modes)
        for mode in modes[k:] + modes[:k]:  # rotate, so no mode always runs first
            capture = MODES[mode]
            with tempfile.TemporaryDirectory(prefix="prov-cap-") as d:
                work = Path(d)
                (work / "job.py").write_text(textwrap.dedent(script))
                job = [sys.executable, "job.py", *args]
                argv = job if capture is None else [
                    sys.executable, "-m", "provenance.cli", "--home", str(home), "run", "--quiet", "--capture", capture,
                    "--", *job]
                out[mode].append(timed(argv, work))
        console.print(f"  repeat {r + 1}/{repeats} done", style="dim")
    return out


def per_op(n: int, repeats: int, fanotify_ok: bool) -> dict[str, float]:
    """Cost of one file operation bare, with the hook, and under a fanotify watcher, on tmpfs (no disk
    in the way): µs per operation, median of ``repeats``."""
    from provenance.connectors import fanotify
    from provenance.connectors.audithook import HOOK_DIR

    shm = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    out: dict[str, list[float]] = {"bare": [], "audit-hook": [], **({"fanotify": []} if fanotify_ok else {})}
    for _ in range(repeats):
        for mode in out:
            with tempfile.TemporaryDirectory(dir=shm) as d, tempfile.TemporaryDirectory(dir=shm) as spool:
                env = {"PATH": "/usr/bin:/bin"}
                if mode == "audit-hook":
                    env |= {"PYTHONPATH": str(HOOK_DIR), "PROVENANCE_APP_ID": "bench", "PROVENANCE_SPOOL": spool}
                watcher = fanotify.Watcher("bench", None) if mode == "fanotify" else None
                if watcher:
                    watcher.start()
                r = subprocess.run([sys.executable, "-c", TINY, d, str(n)], capture_output=True, text=True,
                                   check=True, env=env)
                if watcher:
                    seen = watcher.stop()
                    assert len(seen.events) >= 3 * n, "the watcher missed the job's operations"
                out[mode].append(float(r.stdout))
    return {m: statistics.median(v) for m, v in out.items()}


def hashing_cost(script: str, args: list[str], repeats: int) -> tuple[float, int]:
    """Seconds the launcher's end-of-run hashing takes on what the job leaves (median; a fresh cache
    each time, as for new outputs), and the bytes hashed."""
    from provenance.connectors.fingerprint import attach_hashes, stat_fingerprint

    times, size = [], 0
    with tempfile.TemporaryDirectory(prefix="prov-cap-") as d:
        work = Path(d)
        (work / "job.py").write_text(textwrap.dedent(script))
        subprocess.run([sys.executable, "job.py", *args], cwd=work, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        left = [str(p) for p in sorted(work.rglob("*")) if p.is_file() and p.name != "job.py"]
        for r in range(repeats):
            events = [{"kind": "file", "op": "write", "uri": f, "attrs": {"fingerprint": stat_fingerprint(f)}}
                      for f in left]
            t0 = time.perf_counter()
            stats = attach_hashes(events, work / f"hashes{r}.db")
            times.append(time.perf_counter() - t0)
            size = stats.bytes_hashed
    return statistics.median(times), size


def main() -> None:
    from provenance.connectors import fanotify

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--parts", type=int, default=30, help="parquet shards of the pandas pipeline")
    ap.add_argument("--rows", type=int, default=100_000, help="rows per parquet shard")
    ap.add_argument("--files", type=int, default=400, help="CSV shards of the pure-Python pipeline")
    ap.add_argument("--tiny", type=int, default=20_000, help="tiny files of the worst case")
    args = ap.parse_args()
    why_not = fanotify.probe()
    modes = [m for m in MODES if m != "fanotify" or why_not is None]
    if why_not:
        console.print(f"[yellow]fanotify not measured: {why_not}[/yellow]")
    table = Table(title=f"Capture overhead (median of {args.repeats} interleaved runs, seconds)")
    for col in ("job", *modes, "off / bare", *(f"{m} / off" for m in modes[2:]), "hashing / off"):
        table.add_column(col, justify="right")
    parquet = f"pandas/parquet pipeline ({args.parts} × {args.rows:,} rows)"
    jobs = ((parquet, PARQUET, [str(args.parts), str(args.rows)]),
            (f"pure-Python pipeline ({args.files} CSV shards)", PIPELINE, [str(args.files)]),
            (f"worst case ({args.tiny:,} tiny files)", TINY, [".", str(args.tiny)]))
    with tempfile.TemporaryDirectory(prefix="prov-cap-home-") as h:
        home = Path(h)
        for label, script, job_args in jobs:
            console.print(f"[bold]{label}[/bold]")
            r = {m: statistics.median(v) for m, v in measure(script, job_args, args.repeats, home, modes).items()}
            hashed_s, hashed_bytes = hashing_cost(script, job_args, args.repeats)
            table.add_row(label, *(f"{r[m]:.2f}" for m in modes), f"{r['off'] / r['bare python']:.2f}",
                          *(f"{r[m] / r['off']:.2f}" for m in modes[2:]),
                          f"{hashed_s / r['off']:.3f} ({hashed_bytes / 1e6:,.0f} MB in {hashed_s:.2f} s)")
    console.print(table)
    ops = per_op(args.tiny, args.repeats, why_not is None)
    console.print(f"per file operation on tmpfs (median of {args.repeats}): "
                  + ", ".join(f"{m} {v:.1f} µs" + ("" if m == "bare" else f" ({v / ops['bare']:.2f}×)")
                              for m, v in ops.items()))


if __name__ == "__main__":
    main()
