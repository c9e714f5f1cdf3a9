"""A processor killed mid-stream (SIGKILL) loses and duplicates nothing once the next one resumes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.synth import pipeline_events
from provenance.bus.port import Record, raw_topic
from provenance.config import load_settings
from provenance.stack import open_stack

_PROCESS = """
import sys
from pathlib import Path
from provenance.config import load_settings
from provenance.stack import open_stack
with open_stack(load_settings(home=Path(sys.argv[1]), batch_size=500, processor_workers=int(sys.argv[2]))) as s:
    s.processor.catch_up(lambda st: print("batch", flush=True))
"""


def _append(home: Path, lines: list[str]) -> None:
    with open_stack(load_settings(home=home)) as s:
        s.bus.produce(raw_topic("canonical"), [Record(value=ln.encode()) for ln in lines])


def test_killed_processor_resumes_to_the_same_graph(tmp_path: Path) -> None:
    lines = list(pipeline_events(20_000, seed=5))
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    _append(killed, lines)
    _append(clean, lines)
    for workers in (1, 0):  # kill the pipelined processor, then finish with an inline one
        p = subprocess.Popen([sys.executable, "-c", _PROCESS, str(killed), str(workers)], stdout=subprocess.PIPE,
                             text=True)
        assert p.stdout is not None
        seen = 0
        for _ in p.stdout:
            seen += 1
            if workers and seen == 8:  # mid-stream, with batches in flight
                p.send_signal(signal.SIGKILL)
                break
        p.wait(timeout=120)
        p.stdout.close()
        if workers:
            assert p.returncode == -signal.SIGKILL
        else:
            assert p.returncode == 0 and seen > 0  # the resumed processor had work left
    _assert_no_process_mentions(str(killed))
    with open_stack(load_settings(home=clean, processor_workers=0)) as s:
        s.processor.catch_up()
        expected = s.store.dump()
    with open_stack(load_settings(home=killed, processor_workers=0)) as s:
        assert s.processor.pending() == 0
        assert s.store.dump() == expected


def _assert_no_process_mentions(marker: str, within_s: float = 10.0) -> None:
    """The killed processor's worker processes exit with it (they carry its command line)."""
    deadline = time.monotonic() + within_s
    while True:
        alive = []
        for proc in Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and marker in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    alive.append(proc.name)
            except OSError:
                continue
        if not alive or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert alive == [], f"processes left behind: {alive}"
