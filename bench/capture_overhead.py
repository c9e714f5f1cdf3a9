"""Wall-time cost of capture: the same job bare, under ``provenance run --capture off`` and under
``--capture audit-hook``, side by side in one run.

    python -m bench.capture_overhead [--repeats 5] [--files 400] [--tiny 20000]

Two jobs: a file-heavy Python pipeline (CSV shards → features → JSON outputs, with temporary files)
and the worst case (20k tiny files created, read and deleted). Runs are interleaved so that drift of
the shared machine hits every mode alike; the table gives medians and ratios.
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

console = Console(width=150)

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


def measure(script: str, args: list[str], repeats: int, home: Path) -> dict[str, list[float]]:
    modes = {
        "bare python": [],
        "run --capture off": ["--capture", "off"],
        "run --capture audit-hook": ["--capture", "audit-hook"],
    }
    out: dict[str, list[float]] = {m: [] for m in modes}
    names = list(modes)
    for r in range(repeats):
        for mode in names[r % 3:] + names[: r % 3]:  # rotate, so no mode always runs first
            flags = modes[mode]
            with tempfile.TemporaryDirectory(prefix="prov-cap-") as d:
                work = Path(d)
                (work / "job.py").write_text(textwrap.dedent(script))
                job = [sys.executable, "job.py", *args]
                argv = job if mode == "bare python" else [
                    sys.executable, "-m", "provenance.cli", "--home", str(home), "run", "--quiet", *flags, "--", *job]
                out[mode].append(timed(argv, work))
        console.print(f"  repeat {r + 1}/{repeats} done", style="dim")
    return out



def per_op(n: int, repeats: int) -> tuple[float, float]:
    """CPU cost of one file operation with and without the hook, on tmpfs (no disk in the way)."""
    from provenance.connectors.audithook import HOOK_DIR

    shm = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    bare, hooked = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(dir=shm) as d, tempfile.TemporaryDirectory(dir=shm) as spool:
            for sink, env in ((bare, {}), (hooked, {"PYTHONPATH": str(HOOK_DIR), "PROVENANCE_APP_ID": "bench",
                                                    "PROVENANCE_SPOOL": spool})):
                r = subprocess.run([sys.executable, "-c", TINY, d, str(n)], capture_output=True, text=True,
                                   check=True, env={"PATH": "/usr/bin:/bin", **env})
                sink.append(float(r.stdout))
    return statistics.median(bare), statistics.median(hooked)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--files", type=int, default=400, help="CSV shards of the pipeline")
    ap.add_argument("--tiny", type=int, default=20_000, help="tiny files of the worst case")
    args = ap.parse_args()
    table = Table(title=f"Capture overhead (median of {args.repeats} interleaved runs, seconds)")
    for col in ("job", "bare python", "run --capture off", "run --capture audit-hook", "off / bare",
                "audit-hook / off"):
        table.add_column(col, justify="right")
    with tempfile.TemporaryDirectory(prefix="prov-cap-home-") as h:
        home = Path(h)
        for label, script, job_args in ((f"pipeline ({args.files} CSV shards)", PIPELINE, [str(args.files)]),
                                        (f"worst case ({args.tiny:,} tiny files)", TINY, [".", str(args.tiny)])):
            console.print(f"[bold]{label}[/bold]")
            r = {m: statistics.median(v) for m, v in measure(script, job_args, args.repeats, home).items()}
            table.add_row(label, f"{r['bare python']:.2f}", f"{r['run --capture off']:.2f}",
                          f"{r['run --capture audit-hook']:.2f}",
                          f"{r['run --capture off'] / r['bare python']:.2f}",
                          f"{r['run --capture audit-hook'] / r['run --capture off']:.2f}")
    console.print(table)
    bare, hooked = per_op(args.tiny, args.repeats)
    console.print(f"audit hook, per file operation on tmpfs (median of {args.repeats}): {bare:.1f} µs bare, "
                  f"{hooked:.1f} µs with the hook (+{hooked - bare:.1f} µs, {hooked / bare:.2f}×)")


if __name__ == "__main__":
    main()
