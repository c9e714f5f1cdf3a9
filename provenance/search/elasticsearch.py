"""Elasticsearch adapter for the search port (the official ``elasticsearch`` client, ES 8 API).

One index (``search.index``, default ``provenance``) holds the documents, keyed by graph node id,
so re-indexing a node replaces it (bulk ``index`` with deterministic ids). Text fields use an
analyzer that splits at every non-word character and lower-cases, the same words the embedded
(tantivy) index makes, so a path's segments and a file's name parts are words in both; a trailing
``*`` is a ``prefix`` query. Filters are keyword terms; facets are ``terms`` aggregations. The index
remembers which store offsets it reflects in a companion index (``<index>-meta``).

Writes use ``refresh=wait_for``: documents are searchable when ``upsert`` returns, as the port says.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from provenance.errors import QueryError, SearchError
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

_BULK = 2000

SETTINGS = {
    "analysis": {
        "tokenizer": {"prov_words": {"type": "pattern", "pattern": "[^0-9A-Za-z\u00c0-\uffff]+"}},
        "analyzer": {"prov_words": {"type": "custom", "tokenizer": "prov_words", "filter": ["lowercase"]}},
    },
}
MAPPINGS = {
    "dynamic": "strict",
    "properties": {
        **{f: {"type": "keyword"} for f in ("id", "kind", "type", "project", "job", "state", "user", "tag",
                                              "access")},
        **{f: {"type": "text", "analyzer": "prov_words"} for f in TEXT_FIELDS},
        **{f: {"type": "long"} for f in ("created_ts", "last_ts", "usage")},
        "doc": {"type": "object", "enabled": False},  # the document as the API returns it
    },
}


class ElasticsearchSearch(SearchIndex):
    def __init__(self, url: str, index: str = "provenance", *, api_key: str | None = None,
                 request_timeout_s: float = 30.0) -> None:
        try:
            import elasticsearch
            import elasticsearch.helpers
        except ImportError as exc:  # pragma: no cover - an install without the extra
            raise SearchError("the Elasticsearch index needs its client: pip install 'provenance[elasticsearch]'") \
                from exc
        self._api_error = (elasticsearch.ApiError, elasticsearch.TransportError)
        self._helpers = elasticsearch.helpers
        self.url, self.index = url, index
        self.meta_index = f"{index}-meta"
        self._es = elasticsearch.Elasticsearch(url, api_key=api_key, request_timeout=request_timeout_s)
        try:
            for name, body in ((index, {"settings": SETTINGS, "mappings": MAPPINGS}),
                               (self.meta_index, {"mappings": {"dynamic": False, "properties": {}}})):
                if not self._es.indices.exists(index=name):
                    self._es.options(ignore_status=400).indices.create(index=name, **body)  # 400: a racing creator
            if "access" not in self._mapped_fields():  # an index made before documents said who may see them
                self._es.indices.put_mapping(index=index, properties={"access": {"type": "keyword"}})
        except self._api_error as exc:
            raise SearchError(f"cannot open the Elasticsearch index {index!r} at {url}: {exc}") from exc

    def _mapped_fields(self) -> set[str]:
        mapping = self._es.indices.get_mapping(index=self.index)
        return {f for body in mapping.values() for f in body.get("mappings", {}).get("properties", {})}

    # -- writes ---------------------------------------------------------------------------------
    @staticmethod
    def _source(d: SearchDoc) -> dict[str, Any]:
        return {
            "id": d.id, "kind": d.kind, "type": d.type, "project": d.project or _NONE, "job": d.job or _NONE,
            "state": d.state or _NONE, "user": list(d.users), "tag": [f"{k}={v}" for k, v in d.tags],
            "access": list(d.access) or [_NONE],
            "name": d.name, "uri": d.uri, "tags": " ".join(f"{k} {v}" for k, v in d.tags),
            "description": d.description, "created_ts": d.created_ts, "last_ts": d.last_ts, "usage": d.usage,
            "doc": d.as_dict(),
        }

    def _bulk(self, actions: list[dict[str, Any]]) -> None:
        try:
            for i in range(0, len(actions), _BULK):
                last = i + _BULK >= len(actions)
                _, errors = self._helpers.bulk(self._es, actions[i : i + _BULK], raise_on_error=False,
                                               refresh="wait_for" if last else False)
                assert isinstance(errors, list)
                bad = [e for e in errors if not (isinstance(e, dict) and e.get("delete", {}).get("status") == 404)]
                if bad:
                    raise SearchError(f"Elasticsearch refused {len(bad)} document(s); first: {bad[0]}")
        except self._api_error as exc:
            raise SearchError(f"Elasticsearch bulk request failed: {exc}") from exc

    def upsert(self, docs: Iterable[SearchDoc]) -> int:
        actions = [{"_op_type": "index", "_index": self.index, "_id": d.id, "_source": self._source(d)} for d in docs]
        if actions:
            self._bulk(actions)
        return len(actions)

    def delete(self, ids: Iterable[str]) -> None:
        actions = [{"_op_type": "delete", "_index": self.index, "_id": i} for i in ids]
        if actions:
            self._bulk(actions)

    def clear(self) -> None:
        try:
            self._es.delete_by_query(index=self.index, query={"match_all": {}}, refresh=True, conflicts="proceed")
        except self._api_error as exc:
            raise SearchError(f"Elasticsearch clear failed: {exc}") from exc
        self.set_marker({})

    # -- reads ----------------------------------------------------------------------------------
    @staticmethod
    def _query(q: SearchQuery) -> dict[str, Any]:
        must: list[dict[str, Any]] = []
        filters: list[dict[str, Any]] = []
        for token, prefix in query_words(q.text):
            if prefix:
                must.append({"bool": {"should": [{"prefix": {f: token}} for f in TEXT_FIELDS],
                                      "minimum_should_match": 1}})
            else:
                must.append({"multi_match": {"query": token, "fields": list(TEXT_FIELDS)}})
        filters.extend({"terms": {field: values}} for field, values in query_filters(q))
        if q.time_from is not None or q.time_to is not None:
            bounds = {k: v for k, v in (("gte", q.time_from), ("lte", q.time_to)) if v is not None}
            filters.append({"range": {"last_ts": bounds}})
        if not must and not filters:
            return {"match_all": {}}
        return {"bool": {"must": must, "filter": filters}}

    def search(self, query: SearchQuery) -> SearchResult:
        if query.limit < 1 or query.offset < 0:
            raise QueryError("limit must be >= 1 and offset >= 0")
        order = {"usage": "usage", "recent": "last_ts"}.get(query.sort)
        if order is None and not query.text.strip():
            order = "last_ts"  # nothing to rank by relevance: newest first
        sort: list[Any] = [{order: "desc"}, {"id": "asc"}] if order else ["_score", {"id": "asc"}]
        try:
            r = self._es.search(index=self.index, query=self._query(query), sort=sort, size=query.limit,
                                from_=query.offset, track_total_hits=True, source_includes=["doc"],
                                aggs={f: {"terms": {"field": f, "size": 50}} for f in FACETS})
        except self._api_error as exc:
            raise SearchError(f"Elasticsearch search failed: {exc}") from exc
        hits = []
        for h in r["hits"]["hits"]:
            doc = dict(h["_source"]["doc"])
            if not order:
                doc["score"] = round(float(h.get("_score") or 0.0), 4)
            hits.append(doc)
        facets = {f: {("" if b["key"] == _NONE else str(b["key"])): int(b["doc_count"])
                      for b in r.get("aggregations", {}).get(f, {}).get("buckets", [])} for f in FACETS}
        return SearchResult(int(r["hits"]["total"]["value"]), hits, facets)

    def get(self, doc_id: str) -> dict[str, Any] | None:
        try:
            r = self._es.options(ignore_status=404).get(index=self.index, id=doc_id, source_includes=["doc"])
        except self._api_error as exc:
            raise SearchError(f"Elasticsearch get failed: {exc}") from exc
        return dict(r["_source"]["doc"]) if r.get("found") else None

    def count(self) -> int:
        try:
            return int(self._es.count(index=self.index)["count"])
        except self._api_error as exc:
            raise SearchError(f"Elasticsearch count failed: {exc}") from exc

    def marker(self) -> dict[str, int]:
        try:
            r = self._es.options(ignore_status=404).get(index=self.meta_index, id="marker")
        except self._api_error as exc:
            raise SearchError(f"Elasticsearch read of the marker failed: {exc}") from exc
        pairs = r.get("_source", {}).get("offsets", []) if r.get("found") else []
        return {str(k): int(v) for k, v in pairs}

    def set_marker(self, offsets: dict[str, int]) -> None:
        try:
            pairs = sorted([k, v] for k, v in offsets.items())
            self._es.index(index=self.meta_index, id="marker", document={"offsets": pairs}, refresh="wait_for")
        except self._api_error as exc:
            raise SearchError(f"Elasticsearch write of the marker failed: {exc}") from exc

    def close(self) -> None:
        self._es.close()
