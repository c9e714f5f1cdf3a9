"""The search port's contract. Every adapter runs this suite unchanged (add it to `index`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from provenance.errors import QueryError
from provenance.search.embedded import EmbeddedSearch
from provenance.search.port import SearchDoc, SearchIndex, SearchQuery


@pytest.fixture(params=["embedded", "elasticsearch"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SearchIndex]:
    if request.param == "elasticsearch":  # noida-db's Elasticsearch API, an index per test (conftest.es_index)
        yield request.getfixturevalue("es_index")
        return
    i = EmbeddedSearch(tmp_path / "search")
    yield i
    i.close()


DOCS = [
    SearchDoc("artifact:file:///p/loan/raw/applications.csv", "artifact", "applications.csv",
              "file:///p/loan/raw/applications.csv", "dataset", "loan", ("alice",), (("pii", "true"),),
              "raw loan applications", created_ts=100, last_ts=900, usage=7, access=("loan",)),
    SearchDoc("artifact:file:///p/loan/models/scoring", "artifact", "scoring", "file:///p/loan/models/scoring",
              "model", "loan", ("bob",), (), "credit scoring model", created_ts=300, last_ts=500, usage=2,
              access=("loan",)),
    SearchDoc("artifact:file:///p/fraud/features", "artifact", "features", "file:///p/fraud/features",
              "feature_group", "fraud", ("eve",), (), "fraud features", created_ts=200, last_ts=950, usage=9,
              access=("fraud",)),
    SearchDoc("app:run-1", "app", "loan/train", "run-1", "app", "loan", ("bob",), (), "python train.py",
              job="loan/train", state="finished", created_ts=400, last_ts=450, usage=3, access=("loan",)),
    SearchDoc("user:alice", "user", "alice", "alice", "user", None, ("alice",), (), "user alice", created_ts=1,
              last_ts=10, usage=1),
]
# a user who ran jobs of two projects: seen by the members of either, by nobody else
EVE = SearchDoc("user:eve", "user", "eve", "eve", "user", None, ("eve",), (), "user eve", created_ts=2, last_ts=20,
                usage=2, access=("fraud", "loan"))


def ids(index: SearchIndex, **kw: object) -> list[str]:
    return [h["id"] for h in index.search(SearchQuery(**kw)).hits]  # type: ignore[arg-type]


def test_upsert_is_idempotent_and_replaces(index: SearchIndex) -> None:
    assert index.upsert(DOCS) == 5 and index.count() == 5
    index.upsert(DOCS)
    assert index.count() == 5
    changed = SearchDoc(**{**DOCS[1].__dict__, "description": "retired scoring model", "usage": 0})
    index.upsert([changed])
    assert index.count() == 5 and index.get(DOCS[1].id)["description"] == "retired scoring model"  # type: ignore[index]
    index.delete([DOCS[1].id])
    assert index.count() == 4 and index.get(DOCS[1].id) is None


def test_a_document_comes_back_as_it_went_in(index: SearchIndex) -> None:
    odd = SearchDoc("artifact:file:///p/x%FF.csv", "artifact", "caf\u00e9 \u00ff.csv", "file:///p/x%FF.csv",
                    "dataset", None, ("z\u00fc",), (("note", "\u2603"),),
                    "text beyond ASCII: \u00fc \u4e2d\u6587 \U0001f600", created_ts=5)
    index.upsert([*DOCS, odd])
    assert index.get(odd.id) == odd.as_dict()
    assert index.get(DOCS[0].id) == DOCS[0].as_dict()


def test_full_text_prefix_and_filters(index: SearchIndex) -> None:
    index.upsert(DOCS)
    assert ids(index, text="applications") == [DOCS[0].id]
    assert ids(index, text="scor*") == [DOCS[1].id]  # a real prefix, not the exact word
    assert set(ids(index, text="loan")) >= {DOCS[0].id, DOCS[1].id, DOCS[3].id}
    assert ids(index, text="pii") == [DOCS[0].id]  # tags are text too
    assert ids(index, text="credit model") == [DOCS[1].id]  # every word must match
    assert ids(index, kinds=["app"]) == [DOCS[3].id]
    assert set(ids(index, types=["dataset", "model"])) == {DOCS[0].id, DOCS[1].id}
    assert ids(index, projects=["fraud"]) == [DOCS[2].id]
    assert set(ids(index, users=["bob"])) == {DOCS[1].id, DOCS[3].id}
    assert ids(index, tags=[("pii", "true")]) == [DOCS[0].id]
    assert set(ids(index, time_from=800)) == {DOCS[0].id, DOCS[2].id}
    assert set(ids(index, time_from=400, time_to=600)) == {DOCS[1].id, DOCS[3].id}
    assert ids(index, text='weird "quoted (syntax' ) == []  # never a parser error


def test_sorts_pages_and_facets(index: SearchIndex) -> None:
    index.upsert(DOCS)
    assert ids(index, kinds=["artifact"], sort="usage") == [DOCS[2].id, DOCS[0].id, DOCS[1].id]
    assert ids(index, sort="recent")[:2] == [DOCS[2].id, DOCS[0].id]
    page = index.search(SearchQuery(sort="recent", limit=2, offset=2))
    assert page.total == 5 and [h["id"] for h in page.hits] == ids(index, sort="recent")[2:4]
    facets = index.search(SearchQuery()).facets
    assert facets["kind"] == {"artifact": 3, "app": 1, "user": 1}
    assert facets["project"] == {"loan": 3, "fraud": 1, "": 1}
    with pytest.raises(QueryError):
        index.search(SearchQuery(limit=0))


def test_visible_projects_hide_the_rest(index: SearchIndex) -> None:
    index.upsert([*DOCS, EVE])
    seen = set(ids(index, visible_projects=frozenset({"loan"})))
    assert seen == {DOCS[0].id, DOCS[1].id, DOCS[3].id, DOCS[4].id, EVE.id}  # no project: everyone's
    assert ids(index, text="fraud", visible_projects=frozenset({"loan"})) == []
    assert set(ids(index, kinds=["user"], visible_projects=frozenset({"fraud"}))) == {"user:alice", "user:eve"}
    assert index.search(SearchQuery(visible_projects=frozenset())).total == 1  # alice: of no project
    assert ids(index, text="eve", visible_projects=frozenset({"other"})) == []


def test_marker_and_clear(index: SearchIndex) -> None:
    index.upsert(DOCS)
    index.set_marker({"prov.raw.canonical": 42})
    assert index.marker() == {"prov.raw.canonical": 42}
    index.clear()
    assert index.count() == 0 and index.marker() == {}
