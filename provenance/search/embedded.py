"""The embedded search index: tantivy, in a directory of the state home.

Text fields use tantivy's default tokenizer (lower-cased words, split at punctuation, so a path's
segments are words); filters use raw (exact) fields. A trailing ``*`` on a word is a prefix, made a
regex query: the query parser's ``name:abc*`` silently matches the exact word only.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
import tantivy

from provenance.errors import QueryError
from provenance.search.port import (
    FACETS,
    TEXT_FIELDS,
    SearchDoc,
    SearchIndex,
    SearchQuery,
    SearchResult,
    query_filters,
    query_words,
)
from provenance.search.port import NO_PROJECT as _NONE


def _schema() -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("id", stored=True, tokenizer_name="raw")
    for f in ("kind", "type", "project", "job", "state"):
        sb.add_text_field(f, stored=False, tokenizer_name="raw", fast=True)
    sb.add_text_field("user", stored=False, tokenizer_name="raw")
    sb.add_text_field("tag", stored=False, tokenizer_name="raw")  # key=value
    sb.add_text_field("access", stored=False, tokenizer_name="raw")  # projects that may see it
    for f in TEXT_FIELDS:
        sb.add_text_field(f, stored=False)
    for f in ("created_ts", "last_ts", "usage"):
        sb.add_integer_field(f, stored=False, indexed=True, fast=True)
    # the whole document as JSON, returned with a hit: stored, not indexed (indexed as one raw term per
    # document, as the first layout had it, it took 85 % of the index's commit time)
    sb.add_bytes_field("doc", stored=True, indexed=False, fast=False)
    return sb.build()


class EmbeddedSearch(SearchIndex):
    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.schema = _schema()
        try:
            self.index = tantivy.Index(self.schema, path=str(path), reuse=True)
        except ValueError:  # a schema from another version: rebuild (the index is a projection)
            for f in path.iterdir():
                if f.is_file():
                    f.unlink()
            self.index = tantivy.Index(self.schema, path=str(path), reuse=False)
        self._lock = threading.Lock()
        self._marker_path = path / "marker.json"

    # -- writes ---------------------------------------------------------------------------------
    def _writer(self) -> Any:
        return self.index.writer(64_000_000, 1)

    def upsert(self, docs: Iterable[SearchDoc]) -> int:
        n = 0
        with self._lock:
            writer = self._writer()
            try:
                for d in docs:
                    writer.delete_documents_by_term("id", d.id)
                    writer.add_document(self._document(d))
                    n += 1
                writer.commit()
            except BaseException:
                writer.rollback()
                raise
        self.index.reload()
        return n

    def delete(self, ids: Iterable[str]) -> None:
        with self._lock:
            writer = self._writer()
            for i in ids:
                writer.delete_documents_by_term("id", i)
            writer.commit()
            writer.wait_merging_threads()
        self.index.reload()

    def clear(self) -> None:
        with self._lock:
            writer = self._writer()
            writer.delete_all_documents()
            writer.commit()
            writer.wait_merging_threads()
        self.index.reload()
        self.set_marker({})

    @staticmethod
    def _document(d: SearchDoc) -> tantivy.Document:
        doc = tantivy.Document()
        doc.add_text("id", d.id)
        doc.add_text("kind", d.kind)
        doc.add_text("type", d.type)
        doc.add_text("project", d.project or _NONE)
        doc.add_text("job", d.job or _NONE)
        doc.add_text("state", d.state or _NONE)
        for u in d.users:
            doc.add_text("user", u)
        for k, v in d.tags:
            doc.add_text("tag", f"{k}={v}")
        for project in d.access or (_NONE,):
            doc.add_text("access", project)
        doc.add_text("name", d.name)
        doc.add_text("uri", d.uri)
        doc.add_text("tags", " ".join(f"{k} {v}" for k, v in d.tags))
        doc.add_text("description", d.description)
        doc.add_integer("created_ts", d.created_ts)
        doc.add_integer("last_ts", d.last_ts)
        doc.add_integer("usage", d.usage)
        doc.add_bytes("doc", orjson.dumps(d.as_dict()))
        return doc

    # -- reads ----------------------------------------------------------------------------------
    def _query(self, q: SearchQuery) -> tantivy.Query:
        Q, Must, Should = tantivy.Query, tantivy.Occur.Must, tantivy.Occur.Should
        s = self.schema
        must: list[tuple[Any, Any]] = []
        for token, prefix in query_words(q.text):
            alts = [Q.regex_query(s, f, re.escape(token) + ".*") if prefix else Q.term_query(s, f, token)
                    for f in TEXT_FIELDS]
            must.append((Must, Q.boolean_query([(Should, a) for a in alts])))
        for field, values in query_filters(q):
            must.append((Must, Q.boolean_query([(Should, Q.term_query(s, field, v)) for v in values])))
        if q.time_from is not None or q.time_to is not None:
            must.append((Must, Q.range_query(s, "last_ts", tantivy.FieldType.Integer, q.time_from, q.time_to)))
        return Q.boolean_query(must) if must else Q.all_query()

    def search(self, query: SearchQuery) -> SearchResult:
        if query.limit < 1 or query.offset < 0:
            raise QueryError("limit must be >= 1 and offset >= 0")
        tq = self._query(query)
        searcher = self.index.searcher()
        order = {"usage": "usage", "recent": "last_ts"}.get(query.sort)
        if order is None and not query.text.strip():
            order = "last_ts"  # nothing to rank by relevance: newest first
        kwargs: dict[str, Any] = {"order_by_field": order} if order else {}
        result = searcher.search(tq, query.limit, count=True, offset=query.offset, **kwargs)
        hits = []
        for score, address in result.hits:
            doc = orjson.loads(searcher.doc(address)["doc"][0])
            if not order:
                doc["score"] = round(float(score), 4)
            hits.append(doc)
        facets: dict[str, dict[str, int]] = {}
        aggs = searcher.aggregate(tq, {f: {"terms": {"field": f, "size": 50}} for f in FACETS})
        for f in FACETS:
            buckets = aggs.get(f, {}).get("buckets", [])
            facets[f] = {("" if b["key"] == _NONE else str(b["key"])): int(b["doc_count"]) for b in buckets}
        return SearchResult(int(getattr(result, "count", 0) or 0), hits, facets)

    def get(self, doc_id: str) -> dict[str, Any] | None:
        searcher = self.index.searcher()
        r = searcher.search(tantivy.Query.term_query(self.schema, "id", doc_id), 1)
        if not r.hits:
            return None
        return orjson.loads(searcher.doc(r.hits[0][1])["doc"][0])  # type: ignore[no-any-return]

    def count(self) -> int:
        return int(self.index.searcher().num_docs)

    def marker(self) -> dict[str, int]:
        try:
            data = json.loads(self._marker_path.read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def set_marker(self, offsets: dict[str, int]) -> None:
        tmp = self._marker_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(offsets, sort_keys=True))
        tmp.replace(self._marker_path)

    def close(self) -> None:
        pass
