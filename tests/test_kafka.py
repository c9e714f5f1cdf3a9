"""The processor on Kafka (a real Tansu broker): partitions, groups, rebalances, a killed member.

Every test gets a broker of its own (it starts in well under a second), because the processor's
topic and group names are fixed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.synth import pipeline_events
from provenance.bus.embedded import EmbeddedLog
from provenance.bus.kafka import KafkaBus
from provenance.bus.port import Record, offset_key, raw_topic
from provenance.config import load_settings
from provenance.formats import build_normalizers
from provenance.graph.embedded import EmbeddedStore
from provenance.processor.rules import load_rules
from provenance.processor.runner import PROCESSOR_GROUP, Processor
from provenance.stack import open_stack
from tests.conftest import example_lines
from tests.servers import start_tansu

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def broker() -> Iterator[str]:
    server = start_tansu()
    yield server.address
    server.stop()


def keyed(lines: list[str]) -> list[Record]:
    return [Record(value=ln.encode(), key=json.loads(ln).get("app_id")) for ln in lines]


def reference_dump(lines: list[str], tmp: Path) -> dict[str, Any]:
    """The graph the embedded default builds from the same records."""
    log, store = EmbeddedLog(tmp / "ref-log.db"), EmbeddedStore(tmp / "ref-graph.db")
    log.produce(raw_topic("canonical"), keyed(lines))
    Processor(log, store, load_rules(), build_normalizers(load_settings(home=tmp))).catch_up()
    dump = store.dump()
    log.close()
    store.close()
    return dump


def kafka_config(home: Path, broker: str, **extra: Any) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    cfg = {"bus": {"type": "kafka", "bootstrap_servers": broker, "partitions": 4, "session_timeout_ms": 6000},
           "search": {"type": "none"}, **extra}
    path = home / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_keys_keep_one_apps_events_in_order_on_one_partition(broker: str) -> None:
    bus = KafkaBus(broker, partitions=4)
    t = raw_topic("ordered")
    records = [Record(value=f"{app}:{i}".encode(), key=app) for i in range(50) for app in ("a", "b", "c", "d", "e")]
    offsets = bus.produce(t, records)
    assert len(offsets) == 250
    got: list[Any] = []
    with bus.consumer("g-order", [t]) as c:
        deadline = time.monotonic() + 30
        while len(got) < 250 and time.monotonic() < deadline:
            got.extend(c.poll(500, timeout_s=0.5))
    assert len(got) == 250
    for app in "abcde":
        mine = [m for m in got if m.key == app]
        assert len({m.partition for m in mine}) == 1  # one app, one partition
        assert [m.value.decode() for m in sorted(mine, key=lambda m: m.offset)] == [f"{app}:{i}" for i in range(50)]
    assert sum(bus.end_offsets(t).values()) == 250
    bus.close()


def test_processor_on_kafka_builds_the_embedded_graph_and_resumes_from_the_store(broker: str, tmp_path: Path) -> None:
    lines = example_lines()
    settings = load_settings(kafka_config(tmp_path / "home", broker), home=tmp_path / "home")
    with open_stack(settings) as stack:
        assert stack.bus.group_managed
        stack.bus.produce(raw_topic("canonical"), keyed(lines[: len(lines) // 2]))
        stats = stack.processor.catch_up()
        assert stats.records == len(lines) // 2
        stack.bus.produce(raw_topic("canonical"), keyed(lines[len(lines) // 2 :]))
        stack.bus.produce(raw_topic("canonical"), [Record(value=b"{not json", key="x")])
        stats = stack.processor.catch_up()  # the same member goes on where it was
        assert stats.records == len(lines) - len(lines) // 2 + 1 and stats.dead_lettered == 1
        applied = stack.store.applied_offsets(PROCESSOR_GROUP)
        ends = stack.bus.end_offsets(raw_topic("canonical"))
        assert {offset_key(raw_topic("canonical"), p): e for p, e in ends.items() if e} == applied
        assert stack.bus.committed(PROCESSOR_GROUP, raw_topic("canonical")) == {p: e for p, e in ends.items() if e}
        dump = stack.store.dump()
    assert dump == reference_dump(lines, tmp_path)

    # a new processor (another process, say) starts from the store's offsets, not from the beginning
    with open_stack(settings) as stack:
        assert stack.processor.catch_up().records == 0


def _store_progress(store_path: Path) -> int:
    if not store_path.exists():
        return 0
    store = EmbeddedStore(store_path)
    try:
        return sum(store.applied_offsets(PROCESSOR_GROUP).values())
    finally:
        store.close()


def test_two_processors_split_the_work_and_a_killed_one_loses_and_duplicates_nothing(
        broker: str, tmp_path: Path) -> None:
    lines = list(pipeline_events(40_000, seed=11))
    home = tmp_path / "home"
    config = kafka_config(home, broker, batch_size=500, processor_workers=0)
    bus = KafkaBus(broker, partitions=4)
    bus.produce(raw_topic("canonical"), keyed(lines))
    total = sum(bus.end_offsets(raw_topic("canonical")).values())
    assert total == len(lines)

    env = {**os.environ, "PROVENANCE_CONFIG": str(config), "PROVENANCE_HOME": str(home)}
    logs = [tmp_path / f"proc{i}.log" for i in range(2)]
    procs = []
    for log in logs:
        with log.open("w") as out:
            procs.append(subprocess.Popen([sys.executable, "-m", "provenance.cli", "process"], cwd=ROOT, env=env,
                                          stdout=out, stderr=subprocess.STDOUT))
    victim, survivor = procs
    try:
        # both joined and own partitions before one of them dies
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all("assigned" in log.read_text() for log in logs):
            time.sleep(0.2)
        assert all("assigned" in log.read_text() for log in logs), [log.read_text() for log in logs]
        deadline = time.monotonic() + 120
        while _store_progress(home / "graph.db") < total // 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        done_at_kill = _store_progress(home / "graph.db")
        assert 0 < done_at_kill < total, "the victim must die mid-stream"
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        deadline = time.monotonic() + 180
        while _store_progress(home / "graph.db") < total and time.monotonic() < deadline:
            assert survivor.poll() is None, logs[1].read_text()
            time.sleep(0.2)
        assert _store_progress(home / "graph.db") == total, logs[1].read_text()
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(60)
    assert survivor.returncode == 0, logs[1].read_text()
    # the survivor took the victim's partitions over
    survivor_log = logs[1].read_text()
    assert survivor_log.count("assigned") >= 2, survivor_log
    store = EmbeddedStore(home / "graph.db")
    dump = store.dump()
    store.close()
    bus.close()
    assert dump == reference_dump(lines, tmp_path)
