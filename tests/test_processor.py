from __future__ import annotations

import json

from provenance.bus.port import DEAD_LETTER_TOPIC, Record, raw_topic
from provenance.stack import Stack
from tests.conftest import Queries, example_lines, ingest_lines

GOOD = {"source": "fs", "kind": "file", "op": "read", "ts": 5, "uri": "/d/a.csv", "app_id": "a1"}


def dead(stack: Stack) -> list[dict[str, str]]:
    return [{**m.headers, "value": m.value.decode()} for m in stack.bus.read(DEAD_LETTER_TOPIC, 0, 100)]  # type: ignore[attr-defined]


def test_bad_records_go_to_the_dead_letter_topic_and_the_stream_goes_on(stack: Stack) -> None:
    lines = [
        json.dumps(GOOD),
        "{not json",
        json.dumps({**GOOD, "op": "explode"}),
        json.dumps({"source": "d", "kind": "table_commit", "op": "commit", "ts": 1, "uri": "/t"}),
        json.dumps({**GOOD, "uri": "/d/b.csv", "ts": 6}),
    ]
    stats = ingest_lines(stack, lines).catch_up()
    assert stats.records == 0  # everything was already processed by ingest_lines
    letters = dead(stack)
    assert [d["offset"] for d in letters] == ["1", "2", "3"]
    assert all(d["source_topic"] == raw_topic("canonical") and d["partition"] == "0" and d["attempts"] == "1"
               for d in letters)
    assert "not JSON" in letters[0]["error"]
    assert "op 'explode' is not valid" in letters[1]["error"]
    assert "needs attrs.version" in letters[2]["error"]
    assert letters[0]["value"] == "{not json"  # the record itself is kept, byte for byte
    files = {f["uri"] for f in Queries(stack.store, stack.rules).footprint("a1")["files"]}
    assert files == {"file:///d/a.csv", "file:///d/b.csv"}  # records after the bad ones were applied
    assert stack.processor.pending() == 0


def test_unknown_raw_format_is_dead_lettered(stack: Stack) -> None:
    stack.bus.produce(raw_topic("mystery"), [Record(value=b"x")])
    stack.processor.catch_up()
    assert "no normalizer for raw format 'mystery'" in dead(stack)[0]["error"]


def test_crash_before_commit_redelivers_harmlessly(stack: Stack) -> None:
    lines = example_lines()
    stack.bus.produce(raw_topic("canonical"), [Record(value=ln.encode()) for ln in lines])
    proc = stack.processor
    with stack.bus.consumer(proc.group, stack.bus.raw_topics()) as c:
        proc.process(c.poll(40))  # applied, then "crashed" before commit
    proc.catch_up()  # the next processor starts from the last commit: the 40 come again
    again = stack.store.dump()
    ingest_lines(stack, lines)  # and a full duplicate delivery on top
    assert stack.store.dump() == again


def test_placeholder_app_filled_in_by_its_late_start_event(stack: Stack) -> None:
    ingest_lines(stack, [json.dumps(GOOD)])
    q = Queries(stack.store, stack.rules)
    assert q.footprint("a1")["app"]["placeholder"] is True
    ingest_lines(stack, [json.dumps({"source": "l", "kind": "app", "op": "started", "ts": 1, "app_id": "a1",
                                     "user": "u", "attrs": {"name": "train"}})])
    app = q.footprint("a1")["app"]
    assert (app["placeholder"], app["state"], app["job"], app["users"]) == (False, "started", "train", ["u"])


def test_tags_type_override_and_removal(stack: Stack) -> None:
    ev = [
        {"source": "fs", "kind": "file", "op": "create", "ts": 1, "uri": "/x/blob.bin", "app_id": "w"},
        {"source": "fs", "kind": "file", "op": "xattr_set", "ts": 2, "uri": "/x/blob.bin", "app_id": "w",
         "attrs": {"name": "user.prov.type", "value": "model"}},
        {"source": "fs", "kind": "file", "op": "xattr_set", "ts": 3, "uri": "/x/blob.bin", "app_id": "w",
         "attrs": {"name": "security.selinux", "value": "ignored"}},
        {"source": "api", "kind": "tag", "op": "set", "ts": 4, "uri": "/x/blob.bin",
         "attrs": {"key": "owner", "value": "ml"}},
        {"source": "api", "kind": "tag", "op": "remove", "ts": 6, "uri": "/x/blob.bin", "attrs": {"key": "owner"}},
    ]
    ingest_lines(stack, [json.dumps(e) for e in ev])
    q = Queries(stack.store, stack.rules)
    assert q.upstream("/x/blob.bin", as_of=5)["target"]["tags"] == {"type": "model", "owner": "ml"}
    target = q.upstream("/x/blob.bin")["target"]
    assert target["type"] == "model" and target["tags"] == {"type": "model"}


def test_link_events_draw_lineage(stack: Stack) -> None:
    ev = {"source": "openlineage", "kind": "link", "op": "derived_from", "ts": 9, "uri": "/m/model.onnx",
          "dst": "/d/train.csv", "app_id": "run-1"}
    ingest_lines(stack, [json.dumps(ev)])
    r = Queries(stack.store, stack.rules).upstream("/m/model.onnx")
    assert [a["uri"] for a in r["artifacts"]] == ["file:///d/train.csv"]


def test_a_link_without_an_app_is_drawn_by_an_app_named_after_the_event(stack: Stack) -> None:
    from provenance.events import Event

    ev = {"source": "openlineage", "kind": "link", "op": "derived_from", "ts": 9, "uri": "/m/model.onnx",
          "dst": "/d/train.csv"}
    ingest_lines(stack, [json.dumps(ev), json.dumps(ev)])  # the canonical format leaves the id to inference
    r = Queries(stack.store, stack.rules).upstream("/m/model.onnx")
    assert [a["uri"] for a in r["artifacts"]] == ["file:///d/train.csv"]
    assert [a["app_id"] for a in r["apps"]] == [f"link:{Event.model_validate(ev).event_id}"]


def test_a_record_whose_inference_fails_half_way_contributes_nothing(stack: Stack, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from provenance.processor import runner

    real = runner.infer

    def flaky(event, rules, out=None):  # type: ignore[no-untyped-def]
        real(event, rules, out)  # adds its facts, then fails: they must not be applied
        if event.uri and event.uri.endswith("poison.csv"):
            raise RuntimeError("rule bug")
        return out

    monkeypatch.setattr(runner, "infer", flaky)
    lines = [json.dumps(GOOD), json.dumps({**GOOD, "uri": "/d/poison.csv", "ts": 6}),
             json.dumps({**GOOD, "uri": "/d/b.csv", "ts": 7})]
    ingest_lines(stack, lines)
    letters = dead(stack)
    assert [(d["offset"], d["error"]) for d in letters] == [("1", "inference failed: RuntimeError: rule bug")]
    files = {f["uri"] for f in Queries(stack.store, stack.rules).footprint("a1")["files"]}
    assert files == {"file:///d/a.csv", "file:///d/b.csv"}


def test_garbage_is_collected_less_often_while_processing_and_as_before_after(stack: Stack) -> None:
    import gc
    import threading

    from provenance.processor.runner import batch_gc

    before = gc.get_threshold()
    seen: list[tuple[int, ...]] = []
    stack.processor.listeners.append(lambda facts, offsets: seen.append(gc.get_threshold()))
    ingest_lines(stack, [json.dumps(GOOD)])
    assert seen and seen[0][0] > before[0]  # raised while the batch was applied
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
    # two threads processing at once: the thresholds come back only when the last one leaves
    inside, leave = threading.Event(), threading.Event()

    def other() -> None:
        with batch_gc():
            inside.set()
            leave.wait(10)

    t = threading.Thread(target=other)
    t.start()
    inside.wait(10)
    with batch_gc():
        pass
    assert gc.get_threshold() != before
    leave.set()
    t.join()
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_a_workers_facts_reach_the_processor_unchanged(stack: Stack) -> None:
    from provenance.graph.model import FactBatch
    from provenance.processor.runner import infer_records

    facts, dead, _ = infer_records([(raw_topic("canonical"), ln.encode()) for ln in example_lines()], stack.rules,
                                  stack.normalizers)
    assert not dead and facts.touches and facts.props and facts.tags
    parts = ("nodes", "edges", "touches", "props", "clashes", "tags")
    data = facts.to_bytes()
    assert data[:1] == b"M"  # plain values: marshal
    back = FactBatch.from_bytes(data)
    assert all(getattr(back, p) == getattr(facts, p) for p in parts)
    from provenance.events import Kind

    facts.tag("artifact:file:///x", "k", 1, Kind.FILE, "file:///x")  # a str subclass: marshal cannot write it
    data = facts.to_bytes()
    assert data[:1] == b"P"
    back = FactBatch.from_bytes(data)
    assert all(getattr(back, p) == getattr(facts, p) for p in parts)
