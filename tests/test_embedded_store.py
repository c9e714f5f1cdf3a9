"""What only the embedded store has: its file's layout across versions."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from provenance.graph.embedded import EmbeddedStore
from provenance.graph.model import CREATED, READ, DerivedEdge, DerivedLineage, FactBatch, VersionInfo


def _indexes(path: Path) -> set[str]:
    with sqlite3.connect(path) as c:
        return {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}


def test_a_store_written_with_the_edges_by_artifact_index_opens_without_it(tmp_path: Path) -> None:
    """Schema 3 stores had an index of edges by artifact; it is dropped at open, and lineage still
    replaces cleanly (it is found through the version nodes now)."""
    path = tmp_path / "graph.db"
    s = EmbeddedStore(path)
    x = "file:///d/x.csv"
    s.replace_lineage([DerivedLineage(x, [VersionInfo("~0", 10, None, "initial")],
                                      [DerivedEdge("a1", READ, "~0", 20, 20)])])
    s.close()
    with sqlite3.connect(path) as c:
        c.execute("CREATE INDEX edges_art ON edges (art) WHERE art IS NOT NULL")
    assert "edges_art" in _indexes(path)
    s = EmbeddedStore(path)
    assert "edges_art" not in _indexes(path)
    s.replace_lineage([DerivedLineage(x, [VersionInfo("~w", 5, "w", "v1")], [DerivedEdge("w", CREATED, "~w", 5, 5)])])
    assert s.dump()["edges"] == [("app:w", CREATED, f"version:{x}@~w", 5, 5),
                                 (f"version:{x}@~w", "VERSION_OF", f"artifact:{x}", 5, 5)]
    s.close()


def test_names_interned_in_a_rolled_back_batch_are_forgotten(tmp_path: Path) -> None:
    """New names come back from the INSERT itself; a rolled-back batch must not leave them cached."""
    s = EmbeddedStore(tmp_path / "graph.db")
    b = FactBatch()
    b.node("app:gone", "app", 1)
    try:
        with s.batch():
            s.apply_facts(b)
            raise RuntimeError("the batch fails after its writes")
    except RuntimeError:
        pass
    assert s.nodes(["app:gone"]) == {}
    b2 = FactBatch()
    b2.node("app:kept", "app", 2)
    b2.node("app:gone", "app", 3)
    s.apply_facts(b2)
    assert sorted(s.nodes(["app:gone", "app:kept"])) == ["app:gone", "app:kept"]
    assert [r[0] for r in s.dump()["nodes"]] == ["app:gone", "app:kept"]
    s.close()
