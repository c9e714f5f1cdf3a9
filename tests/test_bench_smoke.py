"""The benchmarks run end to end at toy sizes (their figures come from full runs, see docs/benchmarks.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["bench.ingest", "--events", "3000", "--batch", "500"], "pipelined / inline end-to-end rate"),
        (["bench.queries", "--edges", "20000", "--samples", "5"], "gdpr(raw data)"),
        (["bench.compare_queries", "--against", "HEAD", "--edges", "20000", "--targets", "10"], "p95 this tree"),
        (["bench.breakdown", "--events", "3000", "--batch", "1000"], "of which SQLite"),
        (["bench.api", "--edges", "20000", "--samples", "5"], "API / direct"),
        (["bench.capture_overhead", "--repeats", "1", "--parts", "2", "--rows", "1000", "--files", "5",
          "--tiny", "200"], "per file operation"),
        (["bench.production", "--events", "2000", "--rows", "300", "--neo4j-events", "500"], "ratio to bare"),
    ],
)
def test_benchmark_runs(args: list[str], expect: str) -> None:
    r = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
                       check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    assert expect in r.stdout
