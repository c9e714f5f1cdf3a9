"""The search port: documents for artifacts, apps (runs) and users, full text and filters.

To write an adapter (Elasticsearch, …) implement `SearchIndex`; ``tests/contract/test_search_contract.py``
checks every backend. Documents are keyed by graph node id and replaced whole (upsert), so indexing
the same node twice changes nothing: the index is a projection of the lineage store, rebuilt from it.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

KINDS = ("artifact", "app", "user")
SORTS = ("relevance", "usage", "recent")
TEXT_FIELDS = ("name", "uri", "tags", "description")  # what free text searches
FACETS = ("kind", "type", "project")
NO_PROJECT = "_none_"  # the indexed value of an absent project (a facet bucket and a filter value)
_WORD = re.compile(r"[0-9A-Za-z\u00c0-\uffff]+\*?")


@dataclass(frozen=True)
class SearchDoc:
    id: str  # graph node id: artifact:<uri>, app:<id>, user:<name>
    kind: str  # artifact | app | user
    name: str
    uri: str  # artifact uri, app id, user name
    type: str  # artifact type; "app"; "user"
    project: str | None = None
    users: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    description: str = ""
    job: str | None = None
    state: str | None = None
    created_ts: int = 0
    last_ts: int = 0  # last activity (recency)
    usage: int = 0  # artifacts: apps that read it; apps: files touched; users: runs
    #: who may see the document: the projects whose members may (empty: everyone); a user is seen by the
    #: members of the projects of the runs they made, and by everyone if one of their runs is of no project
    access: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "name": self.name, "uri": self.uri, "type": self.type,
                "project": self.project, "users": list(self.users), "tags": dict(self.tags),
                "description": self.description, "job": self.job, "state": self.state,
                "created_ts": self.created_ts, "last_ts": self.last_ts, "usage": self.usage}


@dataclass(frozen=True)
class SearchQuery:
    text: str = ""  # full text over names, paths, tags and descriptions; a trailing * is a prefix
    kinds: Sequence[str] = ()
    types: Sequence[str] = ()
    projects: Sequence[str] = ()
    users: Sequence[str] = ()
    tags: Sequence[tuple[str, str]] = ()
    time_from: int | None = None  # on last activity, UTC ms
    time_to: int | None = None
    sort: Literal["relevance", "usage", "recent"] = "relevance"
    limit: int = 20
    offset: int = 0
    visible_projects: frozenset[str] | None = None  # access control: None sees everything


@dataclass
class SearchResult:
    total: int
    hits: list[dict[str, Any]] = field(default_factory=list)
    facets: dict[str, dict[str, int]] = field(default_factory=dict)


class SearchIndex(ABC):
    @abstractmethod
    def upsert(self, docs: Iterable[SearchDoc]) -> int:
        """Add or replace documents by id; returns how many. Visible to `search` on return."""

    @abstractmethod
    def delete(self, ids: Iterable[str]) -> None: ...

    @abstractmethod
    def search(self, query: SearchQuery) -> SearchResult: ...

    @abstractmethod
    def get(self, doc_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def count(self) -> int: ...

    @abstractmethod
    def clear(self) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    # the index remembers how far into the store it is (the processor's applied offsets)
    @abstractmethod
    def marker(self) -> dict[str, int]: ...

    @abstractmethod
    def set_marker(self, offsets: dict[str, int]) -> None: ...

    def __enter__(self) -> SearchIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def query_words(text: str) -> list[tuple[str, bool]]:
    """The words of a free-text query, lower-cased, each with whether it is a prefix (a trailing ``*``).

    Words are runs of letters and digits, as both indexes split text, so no input is a syntax error.
    """
    out = []
    for word in _WORD.findall(text):
        token = word.rstrip("*").lower()
        if token:
            out.append((token, word.endswith("*")))
    return out


def query_filters(q: SearchQuery) -> list[tuple[str, list[str]]]:
    """The exact-term filters of a query (each: the field, and values of which one must match)."""
    out = [(field, list(values)) for field, values in (
        ("kind", q.kinds), ("type", q.types), ("project", q.projects), ("user", q.users),
        ("tag", [f"{k}={v}" for k, v in q.tags])) if values]
    if q.visible_projects is not None:  # access control: documents of no project are everyone's
        out.append(("access", [*sorted(q.visible_projects), NO_PROJECT]))
    return out
