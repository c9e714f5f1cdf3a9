"""The bus port's contract. Every adapter runs this suite unchanged (add it to `bus`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from provenance.bus.embedded import EmbeddedLog
from provenance.bus.port import Bus, Consumer, Message, Record


@pytest.fixture(params=["embedded", "kafka"])
def bus(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Bus]:
    b: Bus
    if request.param == "embedded":
        b = EmbeddedLog(tmp_path / "log.db")
    else:
        from provenance.bus.kafka import KafkaBus

        # one partition: the contract is about one partition's order; test_kafka covers several
        b = KafkaBus(request.getfixturevalue("tansu"), partitions=1, session_timeout_ms=6000)
    yield b
    b.close()


def group() -> str:
    return f"g{uuid.uuid4().hex[:8]}"


def drain(c: Consumer, n: int, max_records: int = 100, timeout: float = 30.0) -> list[Message]:
    """Poll until ``n`` records came (a Kafka consumer first joins its group)."""
    out: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        out.extend(c.poll(min(max_records, n - len(out)), timeout_s=0.5))
    return out


def topic() -> str:
    return f"prov.raw.t{uuid.uuid4().hex[:8]}"


def recs(n: int, start: int = 0) -> list[Record]:
    return [Record(value=f"v{i}".encode(), key=f"k{i % 3}", headers={"h": str(i)}) for i in range(start, start + n)]


def test_offsets_are_dense_and_ordered(bus: Bus) -> None:
    t = topic()
    assert bus.produce(t, recs(3)) == [0, 1, 2]
    assert bus.produce(t, recs(2, 3)) == [3, 4]
    assert bus.end_offsets(t)[0] == 5
    with bus.consumer(group(), [t]) as c:
        got = drain(c, 5)
        assert c.at_end()
    assert [m.offset for m in got] == [0, 1, 2, 3, 4]
    assert [m.value for m in got] == [f"v{i}".encode() for i in range(5)]
    assert got[1].key == "k1" and got[1].headers == {"h": "1"}


def test_group_resumes_from_committed_offset(bus: Bus) -> None:
    t, g = topic(), group()
    bus.produce(t, recs(10))
    with bus.consumer(g, [t]) as c:
        first = drain(c, 4, max_records=4)
        assert [m.offset for m in first] == [0, 1, 2, 3]
        c.commit(first)
        drain(c, 3, max_records=3)  # read but not committed: re-delivered to the next consumer
    assert bus.committed(g, t) == {0: 4}
    with bus.consumer(g, [t]) as c:
        assert [m.offset for m in drain(c, 6)] == list(range(4, 10))
        assert c.lag() == {(t, 0): 6}
        assert c.poll(100, timeout_s=0.3) == []
    with bus.consumer(group(), [t]) as c:  # groups are independent
        assert len(drain(c, 10)) == 10


def test_seek_replays_from_any_offset(bus: Bus) -> None:
    t = topic()
    bus.produce(t, recs(6))
    with bus.consumer(group(), [t]) as c:
        assert len(drain(c, 6)) == 6
        c.seek(t, 2)
        assert c.position(t) == 2
        assert [m.offset for m in drain(c, 4)] == [2, 3, 4, 5]


def test_start_position_comes_from_the_caller(bus: Bus) -> None:
    t = topic()
    bus.produce(t, recs(6))
    asked: list[tuple[str, int]] = []

    def start(tp: str, partition: int) -> int:
        asked.append((tp, partition))
        return 4

    with bus.consumer(group(), [t], start) as c:
        assert [m.offset for m in drain(c, 2)] == [4, 5]
    assert asked == [(t, 0)]


def test_poll_reads_several_topics_and_waits(bus: Bus) -> None:
    a, b = topic(), topic()
    bus.produce(a, recs(2))
    bus.produce(b, recs(3))
    with bus.consumer(group(), [a, b]) as c:
        got = drain(c, 5)
        assert sorted((m.topic, m.offset) for m in got) == sorted([(a, 0), (a, 1), (b, 0), (b, 1), (b, 2)])
        t0 = time.monotonic()
        assert c.poll(10, timeout_s=0.3) == []
        assert time.monotonic() - t0 >= 0.25


def test_batches_are_bounded(bus: Bus) -> None:
    t = topic()
    bus.produce(t, recs(25))
    with bus.consumer(group(), [t]) as c:
        sizes = []
        while sum(sizes) < 25 and (batch := c.poll(10, timeout_s=10)):
            sizes.append(len(batch))
    assert sum(sizes) == 25 and max(sizes) == 10


def test_topics_lists_what_was_written(bus: Bus) -> None:
    t = topic()
    bus.produce(t, recs(1))
    assert t in bus.topics() and t in bus.raw_topics()


_WRITER = textwrap.dedent(
    """
    import sys
    from provenance.bus.embedded import EmbeddedLog
    from provenance.bus.port import Record
    log = EmbeddedLog(sys.argv[1])
    name = sys.argv[2]
    for i in range(int(sys.argv[3])):
        offs = log.produce("prov.raw.shared", [Record(value=f"{name}:{i}:{j}".encode()) for j in range(5)])
        print(name, i, offs[-1], flush=True)
    """
)


def test_embedded_concurrent_appenders_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    EmbeddedLog(path).close()
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(path), f"w{n}", "60"], stdout=subprocess.PIPE)
             for n in range(3)]
    for p in procs:
        p.communicate(timeout=120)
        assert p.returncode == 0
    log = EmbeddedLog(path)
    msgs = log.read("prov.raw.shared", 0, 10_000)
    assert [m.offset for m in msgs] == list(range(3 * 60 * 5))
    values = {m.value.decode() for m in msgs}
    assert values == {f"w{n}:{i}:{j}" for n in range(3) for i in range(60) for j in range(5)}
    # one producer's batch stays contiguous and in order
    for n in range(3):
        mine = [m.value.decode() for m in msgs if m.value.startswith(f"w{n}:".encode())]
        assert mine == [f"w{n}:{i}:{j}" for i in range(60) for j in range(5)]
    log.close()


def test_embedded_killed_writer_keeps_every_acknowledged_record(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    EmbeddedLog(path).close()
    p = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), "k", "100000"], stdout=subprocess.PIPE, text=True)
    acked = -1
    assert p.stdout is not None
    for line in p.stdout:
        acked = int(line.split()[2])
        if acked >= 500:
            break
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    p.stdout.close()
    log = EmbeddedLog(path)
    msgs = log.read("prov.raw.shared", 0, 10**6)
    assert len(msgs) >= acked + 1
    assert [m.offset for m in msgs] == list(range(len(msgs)))
    log.close()
