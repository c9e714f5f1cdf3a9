"""Poison never stalls the stream: any record, however malformed, between valid ones — the processor goes
through all of them, applies every valid event exactly as without the poison, and dead-letters what it
cannot use with the reason. Hypothesis varies every field of every event kind; the cases seen in the
wild are pinned below, and so is a value the store itself refuses (found by halving the batch)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provenance.bus.port import DEAD_LETTER_TOPIC, Record, raw_topic, read_topic
from provenance.config import load_settings
from provenance.errors import RecordRefused
from provenance.events.model import OPS, Kind
from provenance.graph.embedded import EmbeddedStore
from provenance.graph.model import FactBatch
from provenance.stack import open_stack

T0 = 1_780_000_000_000
VALID = [
    {"source": "t", "kind": "app", "op": "started", "ts": T0, "app_id": "a1", "user": "u",
     "attrs": {"name": "train", "command": ["python", "t.py"]}},
    {"source": "t", "kind": "file", "op": "read", "ts": T0 + 10, "app_id": "a1", "uri": "/d/raw/in.csv"},
    {"source": "t", "kind": "file", "op": "create", "ts": T0 + 20, "app_id": "a1", "uri": "/d/models/m/1/m.pkl"},
    {"source": "t", "kind": "tag", "op": "set", "ts": T0 + 30, "uri": "/d/raw/in.csv", "attrs": {"key": "pii"}},
    {"source": "t", "kind": "app", "op": "finished", "ts": T0 + 40, "app_id": "a1", "attrs": {"exit_code": 0}},
]

# what a field of an event may be made of, well-formed or not
WEIRD_TEXT = st.one_of(
    st.text(max_size=40),
    st.just("al\u0000ice"), st.just("\ud800"), st.just("x" * 70_000), st.just(""), st.just("   "),
    st.just("../../etc/passwd"), st.just("file://host/x"), st.just("<script>x</script>"),
    st.just("😀 ünïcode"), st.just("app:x@v1"), st.just("/Projects/p/../../x"),
)
WEIRD_NUMBER = st.one_of(
    st.integers(min_value=-2**70, max_value=2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.just(1e30), st.just(2_596_000_000_000_000), st.just(-1), st.just(T0),
)
WEIRD_JSON = st.recursive(st.one_of(st.none(), st.booleans(), WEIRD_NUMBER, WEIRD_TEXT),
                          lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                  st.dictionaries(WEIRD_TEXT, inner, max_size=4)), max_leaves=20)


def _deep(n: int) -> Any:
    value: Any = 1
    for _ in range(n):
        value = {"a": [value]}
    return value


@st.composite
def poison(draw: st.DrawFn) -> bytes:
    """An event of any kind with one or more fields replaced by anything; or bytes that are no event."""
    kind = draw(st.sampled_from(list(Kind)))
    op = draw(st.sampled_from(sorted(OPS[kind])))
    event: dict[str, Any] = {"source": "p", "kind": kind.value, "op": op, "ts": T0 + 5, "app_id": "p1",
                             "uri": "/d/poison.csv", "dst": "/d/other.csv", "attrs": {"key": "k", "name": "n",
                                                                                      "version": "1"}}
    for field in draw(st.lists(st.sampled_from([*sorted(event), "user", "event_id", "schema_version", "extra"]),
                               min_size=1, max_size=4, unique=True)):
        event[field] = draw(st.one_of(WEIRD_TEXT, WEIRD_NUMBER, WEIRD_JSON, st.just(_deep(40)),
                                      st.just(None)))
    if draw(st.booleans()):
        event.pop(draw(st.sampled_from(sorted(event))), None)
    encoded = json.dumps(event, ensure_ascii=draw(st.booleans()), allow_nan=True)  # NaN: not JSON at all
    raw = encoded.encode("utf-8", "surrogatepass")
    return draw(st.sampled_from([raw, raw[: len(raw) // 2], b"\xff\xfe" + raw, b"[" * 5000, b"", b"null"]))


def _apply(home: Path, records: list[bytes]) -> tuple[dict[str, Any], list[dict[str, str]], int]:
    with open_stack(load_settings(home=home, processor_workers=0, search={"type": "none"})) as stack:
        stack.bus.produce(raw_topic("canonical"), [Record(value=r) for r in records])
        stack.processor.catch_up()
        dead = [m.headers for m in read_topic(stack.bus, DEAD_LETTER_TOPIC, 10_000)] \
            if DEAD_LETTER_TOPIC in stack.bus.topics() else []
        return stack.store.dump(), dead, stack.processor.pending()


def _valid() -> list[bytes]:
    return [json.dumps(e).encode() for e in VALID]


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(bad=poison(), where=st.integers(min_value=0, max_value=len(VALID)))
def test_any_poison_among_valid_events(tmp_path_factory: pytest.TempPathFactory, bad: bytes, where: int) -> None:
    records = _valid()
    records.insert(where, bad)
    dump, dead, pending = _apply(tmp_path_factory.mktemp("poison"), records)
    assert pending == 0  # the processor went past it
    # every valid event is applied, exactly as without the poison (or with it, when it was a valid event)
    expected, _, _ = _apply(tmp_path_factory.mktemp("clean"), _valid() if dead else records)
    assert dump == expected
    assert all(d["error"] and d["source_topic"] == "prov.raw.canonical" for d in dead)


@pytest.mark.parametrize(("record", "reason"), [
    ({"source": "s", "kind": "app", "op": "started", "ts": T0, "app_id": "x", "user": "al\u0000ice"}, "NUL"),
    ({"source": "s", "kind": "app", "op": "started", "ts": 1e30, "app_id": "x"}, "after 2199"),
    ({"source": "s", "kind": "app", "op": "started", "ts": "82269-03-01T00:00:00Z", "app_id": "x"}, "ts"),
    ({"source": "s", "kind": "app", "op": "started", "ts": 2_596_000_000_000_000, "app_id": "x"}, "after 2199"),
    ({"source": "s", "kind": "app", "op": "started", "ts": T0, "app_id": "x", "attrs": _deep(100)}, "nested"),
    ({"source": "s", "kind": "file", "op": "read", "ts": T0, "app_id": "x", "uri": "/" + "a" * 20_000}, "long"),
])
def test_the_poison_seen_in_the_wild(tmp_path: Path, record: dict[str, Any], reason: str) -> None:
    records = _valid()
    records.insert(2, json.dumps(record).encode())
    dump, dead, pending = _apply(tmp_path / "h", records)
    assert pending == 0 and len(dead) == 1 and reason in dead[0]["error"]
    assert dump == _apply(tmp_path / "clean", _valid())[0]


def test_a_lone_surrogate_and_deep_nesting_do_not_stop_ingest(tmp_path: Path) -> None:
    import subprocess
    import sys

    feed = tmp_path / "feed.jsonl"
    lines = [json.dumps(e) for e in VALID]
    lines.insert(1, '{"source": "s", "kind": "app", "op": "started", "ts": 1, "app_id": "\\ud800"}')
    lines.insert(2, "[" * 100_000 + "]" * 100_000)
    feed.write_text("\n".join(lines) + "\n")
    r = subprocess.run([sys.executable, "-m", "provenance.cli", "--home", str(tmp_path / "h"), "ingest", str(feed),
                        "--json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"appended": 7, "dead_lettered": 2, "events": 5, "processed": 7,
                                    "topic": "prov.raw.canonical"}


class RefusingStore(EmbeddedStore):
    """An embedded store that refuses any batch holding the node ``app:refused`` (as a server refuses a
    value of a type or size it does not take)."""

    def apply_facts(self, batch: FactBatch) -> None:
        if "app:refused" in batch.nodes:
            raise RecordRefused("a value cannot be stored: refused on purpose")
        super().apply_facts(batch)


def test_a_record_the_store_refuses_is_found_and_dead_lettered(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "h", processor_workers=0, search={"type": "none"})
    with open_stack(settings) as stack:
        stack.store.close()
        stack.store = RefusingStore(settings.store_path)
        records = _valid()
        refused = {"source": "s", "kind": "file", "op": "read", "ts": T0 + 1, "app_id": "refused", "uri": "/d/x"}
        records.insert(3, json.dumps(refused).encode())
        stack.bus.produce(raw_topic("canonical"), [Record(value=r) for r in records])
        stats = stack.processor.catch_up()
        assert stats.dead_lettered == 1 and "the store refused it" in stats.errors[0]
        assert stack.processor.pending() == 0
        dead = read_topic(stack.bus, DEAD_LETTER_TOPIC, 10)
        assert [json.loads(m.value)["app_id"] for m in dead] == ["refused"] and dead[0].headers["offset"] == "3"
        dump = stack.store.dump()
    assert dump == _apply(tmp_path / "clean", _valid())[0]


def test_a_dead_processor_thread_fails_the_health_check(tmp_path: Path) -> None:
    """serve's processor stops for good after failures in a row: /healthz says 503 and why."""
    from fastapi.testclient import TestClient

    from provenance.api.app import create_app

    settings = load_settings(home=tmp_path / "h", server={"allowed_hosts": ["testserver"]})
    app = create_app(settings, auth=False, run_processor=True)
    import provenance.api.app as app_module

    calls = []

    def failing(settings: Any, stop: Any, **kw: Any) -> None:
        calls.append(1)
        raise RecordRefused("the store is gone")

    original = app_module.run_processor
    app_module.run_processor = failing
    try:
        with TestClient(app) as c:
            for _ in range(100):
                if app.state.api.processor_dead:
                    break
                time.sleep(0.05)
            r = c.get("/healthz")
            assert r.status_code == 503 and r.json()["status"] == "failing"
            assert "the store is gone" in r.json()["last_processor_error"] and calls
            assert "provenance_processor_up 0.0" in c.get("/metrics").text
    finally:
        app_module.run_processor = original
