"""Faults an operator meets, and recovery from them: `provenance process` and `provenance serve` killed
with SIGKILL at random moments, again and again; a disk that fills up while records are appended and
while they are processed. After each, the store equals a clean run's over the same records, and
`provenance check` finds nothing wrong; and every restart moves the processing on.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.synth import pipeline_events
from provenance.bus.port import Record, raw_topic
from provenance.config import load_settings
from provenance.errors import LogFullError, StoreFullError
from provenance.stack import open_stack
from tests.servers import free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
KILLS = 20


def _lines(n: int) -> list[bytes]:
    return [line.encode() for line in pipeline_events(n, seed=7)]


def _cli(home: Path, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PROVENANCE_BATCH_SIZE": "2000", **kw.pop("env", {})}
    return subprocess.run([sys.executable, "-m", "provenance.cli", "--home", str(home), *args], capture_output=True,
                          text=True, timeout=kw.pop("timeout", 600), env=env, cwd=ROOT, **kw)


def _dump(home: Path) -> dict[str, Any]:
    with open_stack(load_settings(home=home)) as stack:
        return stack.store.dump()


def _applied(home: Path) -> int:
    with open_stack(load_settings(home=home)) as stack:
        return sum(stack.store.applied_offsets(stack.processor.group).values())


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The records of the fault runs (a JSON-lines file) and the store a clean run makes of them."""
    root = tmp_path_factory.mktemp("records")
    feed = root / "feed.jsonl"
    feed.write_bytes(b"\n".join(_lines(40_000)) + b"\n")
    clean = root / "clean"
    r = _cli(clean, "ingest", str(feed), "--json")
    assert r.returncode == 0, r.stderr
    return feed, _dump(clean)


def _append(home: Path, lines: list[bytes]) -> None:
    with open_stack(load_settings(home=home)) as stack:
        stack.bus.produce(raw_topic("canonical"), [Record(value=v) for v in lines])


def _kill_loop(home: Path, feed: Path, start: Any, rng: random.Random) -> list[tuple[int, int]]:
    """Records keep arriving (a KILLS-th of the feed each time); a processor is started and SIGKILLed after a
    random moment, KILLS times. (applied, appended) after each kill."""
    lines = feed.read_bytes().splitlines()
    chunk = -(-len(lines) // KILLS)
    progress = []
    first = 0.0  # how long the first start took to its first batch, on this machine now: the kills are around it
    for k in range(KILLS):
        _append(home, lines[k * chunk: (k + 1) * chunk])
        proc = start()
        if k == 0:
            began = time.monotonic()
            while _applied(home) == 0 and time.monotonic() - began < 60:
                time.sleep(0.05)
            first = time.monotonic() - began
        else:  # some before the first batch, most after: a restart lives 0.8 to 0.8 + 2 s of that
            time.sleep(rng.uniform(0.8 * first, 0.8 * first + 2.0))
        os.killpg(proc.pid, signal.SIGKILL)  # the process and its workers, as an OOM killer or a power cut would
        proc.wait(timeout=30)
        progress.append((_applied(home), min(len(lines), (k + 1) * chunk)))
    return progress


def _no_long_stalls(progress: list[tuple[int, int]]) -> None:
    """Restarts move on: never three kills in a row without a batch applied in between while records were
    waiting (a restart lives from 0.8 of the time the first start took to its first batch to 2 s more: on a
    loaded machine starting Python and the web app takes longer, and the kills follow)."""
    stalled = 0
    before = 0
    for applied, appended in progress:
        stalled = 0 if applied > before or applied == appended else stalled + 1
        before = applied
        assert stalled < 3, progress
    assert sum(1 for a, b in zip([(0, 0), *progress], progress, strict=False) if b[0] > a[0]) >= KILLS // 2


def test_process_killed_again_and_again(tmp_path: Path, records: tuple[Path, dict[str, Any]]) -> None:
    feed, clean = records
    home = tmp_path / "home"
    env = {**os.environ, "PROVENANCE_BATCH_SIZE": "2000"}

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "provenance.cli", "--home", str(home), "process",
                                 "--until-caught-up"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)

    progress = _kill_loop(home, feed, start, random.Random(11))
    _no_long_stalls(progress)
    assert _cli(home, "process", "--until-caught-up").returncode == 0
    assert _dump(home) == clean
    check = _cli(home, "check", "--json")
    assert check.returncode == 0 and json.loads(check.stdout)["ok"], check.stdout


def test_serve_killed_again_and_again(tmp_path: Path, records: tuple[Path, dict[str, Any]]) -> None:
    feed, clean = records
    home = tmp_path / "home"
    env = {**os.environ, "PROVENANCE_BATCH_SIZE": "2000"}

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "provenance.cli", "--home", str(home), "serve", "--no-auth",
                                 "--port", str(free_port())], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)

    progress = _kill_loop(home, feed, start, random.Random(12))
    _no_long_stalls(progress)
    assert _cli(home, "process", "--until-caught-up").returncode == 0
    assert _dump(home) == clean
    assert json.loads(_cli(home, "check", "--json").stdout)["ok"]


def test_sigterm_stops_after_the_batch_in_hand(tmp_path: Path, records: tuple[Path, dict[str, Any]]) -> None:
    feed, clean = records
    home = tmp_path / "home"
    assert _cli(home, "ingest", str(feed), "--no-process").returncode == 0
    proc = subprocess.Popen([sys.executable, "-m", "provenance.cli", "--home", str(home), "process",
                             "--until-caught-up"], cwd=ROOT, env={**os.environ, "PROVENANCE_BATCH_SIZE": "2000"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while _applied(home) == 0 and time.monotonic() < deadline:  # the first batch is in: it is working
        time.sleep(0.05)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    took = time.monotonic() - sent
    assert took < 10, f"SIGTERM took {took:.1f} s: the processor did not stop after its batch"
    applied = _applied(home)
    assert 0 < applied < len(feed.read_bytes().splitlines()), applied  # stopped, with records left for later
    assert json.loads(_cli(home, "check", "--json").stdout)["ok"]
    assert _cli(home, "process", "--until-caught-up").returncode == 0
    assert _dump(home) == clean


# -- a full disk ------------------------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MiB file system (tmpfs; mounting needs root, which CI has)."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("a small file system to fill is a tmpfs mount, which needs root (CI runs as root)")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _grow(mount: Path) -> None:
    subprocess.run(["mount", "-o", "remount,size=256m", str(mount)], check=True)


def test_a_full_disk_while_appending(small_disk: Path, records: tuple[Path, dict[str, Any]]) -> None:
    feed, _ = records
    home = small_disk / "home"
    r = _cli(home, "ingest", str(feed), "--no-process")
    assert r.returncode == 1 and "is full" in r.stderr and "appended before this" in r.stderr, r.stderr
    appended = int(r.stderr.split(" record(s) were appended")[0].rsplit(";", 1)[1])
    with open_stack(load_settings(home=home, search={"type": "none"})) as stack:
        assert sum(stack.bus.end_offsets(raw_topic("canonical")).values()) == appended  # what it said, exactly
    _grow(small_disk)
    assert _cli(home, "process", "--until-caught-up").returncode == 0
    # the store holds what a clean run of the appended records makes
    clean = small_disk / "clean"
    with open_stack(load_settings(home=clean, search={"type": "none"})) as stack:
        stack.bus.produce(raw_topic("canonical"), [Record(value=v) for v in feed.read_bytes().splitlines()[:appended]])
        stack.processor.catch_up()
        expected = stack.store.dump()
    assert _dump(home) == expected
    assert json.loads(_cli(home, "check", "--json").stdout)["ok"]


def test_a_full_disk_while_processing(small_disk: Path, tmp_path: Path, records: tuple[Path, dict[str, Any]]) -> None:
    """The log on a roomy disk, the store on the small one: processing fails with "disk full", keeps nothing
    of the failed batch (no id of a rolled-back name survives in memory), and finishes once there is room."""
    feed, clean = records
    settings = load_settings(home=tmp_path / "home", bus={"path": tmp_path / "log.db"},
                             store={"path": small_disk / "graph.db"}, search={"type": "none"},
                             processor_workers=0, batch_size=2000)
    with open_stack(settings) as stack:
        stack.bus.produce(raw_topic("canonical"), [Record(value=v) for v in feed.read_bytes().splitlines()])
        with pytest.raises(StoreFullError, match="is full"):
            stack.processor.catch_up()
        assert stack.store.check() == []  # what was committed before is whole
        _grow(small_disk)
        stack.processor.catch_up()  # the same process, the same caches: nothing stale in them
        assert stack.store.check() == [] and stack.processor.pending() == 0
        assert stack.store.dump() == clean


def test_the_log_says_its_disk_is_full(small_disk: Path) -> None:
    settings = load_settings(home=small_disk / "home", search={"type": "none"})
    with open_stack(settings) as stack, pytest.raises(LogFullError, match="is full"):
        stack.bus.produce(raw_topic("canonical"), [Record(value=b"x" * 100_000) for _ in range(100)])
