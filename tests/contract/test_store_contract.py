"""The lineage-store port's contract. Every adapter runs this suite unchanged (add it to `store`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from provenance.graph.embedded import EmbeddedStore
from provenance.graph.model import (
    CREATED,
    READ,
    VERSION_OF,
    DerivedEdge,
    DerivedLineage,
    FactBatch,
    Touch,
    VersionInfo,
)
from provenance.graph.port import LineageStore


@pytest.fixture(params=["embedded", "neo4j"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LineageStore]:
    if request.param == "neo4j":  # ArcadeDB's Bolt server, a database per test (conftest.neo4j_store)
        yield request.getfixturevalue("neo4j_store")
        return
    s = EmbeddedStore(tmp_path / "graph.db")
    yield s
    s.close()


def facts() -> FactBatch:
    b = FactBatch()
    for node, kind, ts in [("app:a1", "app", 100), ("app:a1", "app", 50), ("user:u", "user", 60),
                           ("artifact:file:///d/x.csv", "artifact", 5)]:
        b.node(node, kind, ts)
    b.edge("user:u", "RAN", "app:a1", 70)
    b.edge("user:u", "RAN", "app:a1", 40)
    b.prop("app:a1", "state", 50, "started", 1)
    b.prop("app:a1", "state", 100, "finished", 2)
    b.prop("app:a1", "state", 100, "submitted", 0)
    b.prop("app:a1", "cmd", 50, ["python", "x.py"])
    b.touch("a1", "file:///d/x.csv", "read", "file:///d/x.csv", "", 80, 80)
    b.touch("a1", "file:///d/x.csv", "read", "file:///d/x.csv", "", 60, 60)
    b.tag("artifact:file:///d/x.csv", "pii", 10, "true", "file:///d/x.csv")
    b.tag("artifact:file:///d/x.csv", "pii", 90, None, "file:///d/x.csv")
    return b


def test_batches_merge_like_the_store() -> None:
    a, b = facts(), FactBatch()
    b.node("app:a1", "app", 10)
    b.touch("a1", "file:///d/x.csv", "read", "file:///d/x.csv", "", 90, 95)
    a.extend(b)
    assert a.nodes["app:a1"] == ["app", 10, 100]
    assert a.touches[("a1", "file:///d/x.csv", "read", "", "")] == ["file:///d/x.csv", 60, 95]


def test_nodes_and_edges_merge_by_min_and_max_time(store: LineageStore) -> None:
    store.apply_facts(facts())
    n = store.nodes(["app:a1"])["app:a1"]
    assert (n.first_ts, n.last_ts) == (50, 100)
    e = store.edges_to(["app:a1"], ["RAN"])
    assert [(x.src, x.first_ts, x.last_ts) for x in e] == [("user:u", 40, 70)]
    t = store.touches_of_apps(["a1"])
    assert [(x.first_ts, x.last_ts) for x in t] == [(60, 80)]


def test_applying_twice_changes_nothing(store: LineageStore) -> None:
    store.apply_facts(facts())
    once = store.dump()
    store.apply_facts(facts())
    assert store.dump() == once


def test_properties_and_tags_travel_in_time(store: LineageStore) -> None:
    store.apply_facts(facts())
    assert store.nodes(["app:a1"], as_of=49) == {}
    assert store.nodes(["app:a1"], as_of=60)["app:a1"].props == {"state": "started", "cmd": ["python", "x.py"]}
    # two facts at one instant: the higher rank (the later state) wins
    assert store.nodes(["app:a1"])["app:a1"].props["state"] == "finished"
    art = "artifact:file:///d/x.csv"
    assert store.nodes([art], as_of=50)[art].tags == {"pii": "true"}
    assert store.nodes([art], as_of=95)[art].tags == {}  # removed at 90
    assert store.edges_to(["app:a1"], ["RAN"], as_of=39) == []


def _grouped_props(parts: int, reverse: bool) -> list[FactBatch]:
    """Properties set together at one instant (as an app's start sets its attributes), a value that
    clashes with one of them at the same instant, and one set later, spread over ``parts`` batches."""
    facts = [("app:a2", "name", 10, "train"), ("app:a2", "project", 10, "p1"), ("app:a2", "cmd", 10, ["python"]),
             ("app:a2", "name", 10, "zeta"), ("app:a2", "project", 30, "p2"), ("app:a3", "project", 10, "p1")]
    if reverse:
        facts.reverse()
    batches = [FactBatch() for _ in range(parts)]
    for i, (node, key, ts, value) in enumerate(facts):
        b = batches[i % parts]
        b.node(node, "app", ts)
        b.prop(node, key, ts, value)
    return batches


@pytest.mark.parametrize(("parts", "reverse"), [(1, False), (1, True), (3, False), (6, True)])
def test_properties_set_together_are_read_one_by_one(store: LineageStore, parts: int, reverse: bool) -> None:
    for b in _grouped_props(parts, reverse):
        store.apply_facts(b)
    # two values of one key at one instant are both facts; the read picks the greater, however they came
    assert store.nodes(["app:a2"], as_of=20)["app:a2"].props == {"name": "zeta", "project": "p1", "cmd": ["python"]}
    assert store.nodes(["app:a2"])["app:a2"].props["project"] == "p2"
    assert store.nodes(["app:a2"], as_of=9) == {}
    assert [n.id for n in store.find_nodes("app", where={"project": "p1"}, as_of=20)[0]] == ["app:a2", "app:a3"]
    assert [n.id for n in store.find_nodes("app", where={"project": "p1"})[0]] == ["app:a3"]
    assert store.find_nodes("app", where={"name": "zeta"})[1] == 1
    assert store.find_nodes("app", where={"name": "train"})[1] == 0
    assert len(store.dump()["props"]) == 6  # every fact once, whichever batch brought it


def test_property_facts_do_not_depend_on_how_they_were_batched(store: LineageStore) -> None:
    for b in _grouped_props(1, False):
        store.apply_facts(b)
    together = store.dump()
    for b in _grouped_props(6, True):  # the same facts again, one per batch
        store.apply_facts(b)
    assert store.dump() == together
    assert store.stats()["props"] == 6


def test_replace_lineage_swaps_one_artifact_atomically(store: LineageStore) -> None:
    x, y = "file:///d/x.csv", "file:///d/y.csv"
    old = DerivedLineage(x, [VersionInfo("~0", 10, None, "initial")], [DerivedEdge("a1", READ, "~0", 20, 20)])
    other = DerivedLineage(y, [VersionInfo("~a1", 30, "a1", "v1")], [DerivedEdge("a1", CREATED, "~a1", 30, 30)])
    store.replace_lineage([old, other])
    assert {e.dst for e in store.edges_from(["app:a1"], [READ, CREATED])} == {f"version:{x}@~0", f"version:{y}@~a1"}
    new = DerivedLineage(x, [VersionInfo("~w", 5, "w", "v1")], [DerivedEdge("a1", READ, "~w", 20, 20)])
    store.replace_lineage([new])
    assert {e.dst for e in store.edges_from(["app:a1"], [READ, CREATED])} == {f"version:{x}@~w", f"version:{y}@~a1"}
    assert store.versions([x]) == {x: [VersionInfo("~w", 5, "w", "v1")]}
    assert store.nodes([f"version:{x}@~0"]) == {}
    assert store.edges_from([f"version:{x}@~0"], [VERSION_OF]) == []
    assert store.edges_to([f"version:{x}@~0"], [READ, CREATED]) == []
    assert [e.dst for e in store.edges_from([f"version:{x}@~w"], [VERSION_OF])] == [f"artifact:{x}"]
    assert store.versions([x], as_of=4) == {x: []}


def test_artifact_touches_returns_every_touch_of_an_artifact(store: LineageStore) -> None:
    store.apply_facts(facts())
    got = store.artifact_touches(["file:///d/x.csv", "file:///nothing"])
    assert got["file:///nothing"] == []
    assert got["file:///d/x.csv"] == [Touch("a1", "file:///d/x.csv", "read", "file:///d/x.csv", "", 60, 80)]


def test_find_nodes_filters_on_properties_as_of(store: LineageStore) -> None:
    b = FactBatch()
    for i in range(5):
        b.node(f"app:r{i}", "app", 100 + i)
        b.prop(f"app:r{i}", "user", 100 + i, "alice" if i % 2 else "bob")
        b.prop(f"app:r{i}", "state", 200 + i, "finished", 2)
    store.apply_facts(b)
    nodes, total = store.find_nodes("app", where={"user": "bob"})
    assert total == 3 and [n.id for n in nodes] == ["app:r4", "app:r2", "app:r0"]
    nodes, total = store.find_nodes("app", where={"state": "finished"}, as_of=202)
    assert total == 3
    nodes, total = store.find_nodes("app", limit=2, offset=1)
    assert total == 5 and [n.id for n in nodes] == ["app:r3", "app:r2"]


def test_reading_large_frontiers(store: LineageStore) -> None:
    b = FactBatch()
    ids = [f"app:n{i}" for i in range(40_000)]  # more than SQLite's parameter limit
    for i in ids:
        b.node(i, "app", 1)
    store.apply_facts(b)
    assert len(store.nodes(ids)) == 40_000
    assert store.stats()["nodes"] == 40_000


def test_check_finds_nothing_in_a_sound_store_and_names_what_dangles(store: LineageStore) -> None:
    store.apply_facts(facts())
    store.replace_lineage([DerivedLineage("file:///d/x.csv", [VersionInfo("~a1", 60, "a1", "v1")],
                                          [DerivedEdge("a1", READ, "~a1", 60, 80)])])
    assert store.check() == []
    ghost = FactBatch()
    ghost.prop("app:ghost", "state", 1, "started")  # a property of a node that was never written
    store.apply_facts(ghost)
    assert any("properties of no node" in p for p in store.check())


def test_flows_of_touches_and_their_edges(store: LineageStore) -> None:
    """A touch names the part of the run it happened in; lineage keeps the run's edge (the footprint) and the
    flow's (which input reached which output), each with its own times."""
    b = FactBatch()
    for node, kind in (("app:a1", "app"), ("flow:a1#p:10.1", "flow"), ("flow:a1#p:11.2", "flow"),
                       ("artifact:file:///d/in.csv", "artifact"), ("artifact:file:///d/out.csv", "artifact")):
        b.node(node, kind, 5)
    b.touch("a1", "file:///d/in.csv", "read", "file:///d/in.csv", "", 10, 12, "p:10.1")
    b.touch("a1", "file:///d/in.csv", "read", "file:///d/in.csv", "", 30, 31, "p:11.2")
    b.touch("a1", "file:///d/out.csv", "create", "file:///d/out.csv", "", 40, 50, "p:11.2")
    store.apply_facts(b)
    touches = store.artifact_touches(["file:///d/in.csv"])["file:///d/in.csv"]
    assert sorted((t.flow, t.first_ts) for t in touches) == [("p:10.1", 10), ("p:11.2", 30)]
    assert {t.flow for t in store.touches_of_apps(["a1"])} == {"p:10.1", "p:11.2"}
    key = ("a1", "file:///d/out.csv", "create", "", "p:11.2")
    assert store.stored_touches([key])[key].last_ts == 50
    store.replace_lineage([
        DerivedLineage("file:///d/in.csv", [VersionInfo("~0", 10, None, "initial")],
                       [DerivedEdge("a1", READ, "~0", 10, 12, "p:10.1"), DerivedEdge("a1", READ, "~0", 30, 31,
                                                                                     "p:11.2")]),
        DerivedLineage("file:///d/out.csv", [VersionInfo("~a1", 40, "a1", "v1")],
                       [DerivedEdge("a1", CREATED, "~a1", 40, 50, "p:11.2")])])
    run = {(e.rel, e.dst, e.first_ts, e.last_ts) for e in store.edges_from(["app:a1"], [READ, CREATED])}
    assert run == {(READ, "version:file:///d/in.csv@~0", 10, 31), (CREATED, "version:file:///d/out.csv@~a1", 40, 50)}
    second = {(e.rel, e.dst, e.first_ts) for e in store.edges_from(["flow:a1#p:11.2"], [READ, CREATED])}
    assert second == {(READ, "version:file:///d/in.csv@~0", 30), (CREATED, "version:file:///d/out.csv@~a1", 40)}
    assert {e.src for e in store.edges_to(["version:file:///d/in.csv@~0"], [READ])} == {
        "app:a1", "flow:a1#p:10.1", "flow:a1#p:11.2"}
    assert store.check() == []


def test_contents_are_found_by_hash_and_by_artifact(store: LineageStore) -> None:
    b = FactBatch()
    b.content("blake2b:aa", "file:///m/1/model.pkl", "train", "create", "file:///m", 100)
    b.content("blake2b:aa", "file:///serve/model.pkl", "deploy", "create", "file:///serve", 200)
    b.content("blake2b:aa", "file:///serve/model.pkl", "deploy", "create", "file:///serve", 150)  # earlier: kept
    b.content("blake2b:bb", "file:///m/1/metrics.json", "train", "create", "file:///m", 100)
    store.apply_facts(b)
    copies = store.contents(hashes=["blake2b:aa"])
    assert [(c.uri, c.app, c.ts) for c in copies] == [("file:///m/1/model.pkl", "train", 100),
                                                      ("file:///serve/model.pkl", "deploy", 150)]
    assert {c.hash for c in store.contents(artifacts=["file:///m"])} == {"blake2b:aa", "blake2b:bb"}
    assert [c.uri for c in store.contents(hashes=["blake2b:aa"], as_of=120)] == ["file:///m/1/model.pkl"]
