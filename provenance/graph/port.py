"""The lineage-store port.

To write an adapter (Neo4j, …) implement `LineageStore`. The contract, checked by
``tests/contract/test_store_contract.py`` against every backend:

- Writes are idempotent and commutative. ``apply_facts`` merges nodes and edges by min(first)/max(last)
  time and adds properties, tags and touches as sets. ``replace_lineage`` swaps the versions and
  app→version edges of one artifact for a freshly resolved set (atomically).
- Reads take ``as_of`` (UTC ms, `NEVER` for now): a node or edge exists from its first time on;
  a property's value is its newest fact at or before ``as_of``.
- The processor records the offsets it applied inside the same batch (`record_offsets`) and resumes
  from them, so a store that lost its last batches (or was deleted) is caught up from the log.
- Traversals are one level at a time (`edges_from` / `edges_to`), so that the query layer in
  `provenance.graph.queries` can enforce depth limits and time budgets the same way on every backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from provenance.graph.model import NEVER, Content, DerivedLineage, Edge, FactBatch, Node, Touch, VersionInfo


class LineageStore(ABC):
    # -- writes ------------------------------------------------------------------------------
    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group the writes of one processor batch (one transaction where the backend has them)."""
        yield

    @abstractmethod
    def record_offsets(self, group: str, offsets: dict[str, int]) -> None:
        """Remember, in the same batch as the writes, the next offset to read per topic."""

    @abstractmethod
    def applied_offsets(self, group: str) -> dict[str, int]:
        """What `record_offsets` stored: where a processor of ``group`` resumes (exactly once)."""

    @abstractmethod
    def stored_touches(self, keys: Collection[tuple[str, str, str, str, str]]
                       ) -> dict[tuple[str, str, str, str, str], Touch]:
        """Stored touches by (app, uri, op, version, flow)."""

    @abstractmethod
    def add_lineage(self, lineages: Iterable[DerivedLineage]) -> None:
        """Merge versions and app→version edges into an artifact's lineage (min/max times)."""

    @abstractmethod
    def apply_facts(self, batch: FactBatch) -> None: ...

    @abstractmethod
    def replace_lineage(self, lineages: Iterable[DerivedLineage]) -> None:
        """Replace the versions and app→version edges of each artifact, in one transaction."""

    @abstractmethod
    def artifact_touches(self, artifacts: Collection[str]) -> dict[str, list[Touch]]:
        """All touches of the given artifact root URIs (the input of version resolution)."""

    # -- reads -------------------------------------------------------------------------------
    @abstractmethod
    def nodes(self, ids: Collection[str], as_of: int = NEVER) -> dict[str, Node]:
        """Nodes that existed at ``as_of``, with properties and tags as they were then."""

    @abstractmethod
    def edges_from(self, ids: Collection[str], rels: Collection[str], as_of: int = NEVER) -> list[Edge]: ...

    @abstractmethod
    def edges_to(self, ids: Collection[str], rels: Collection[str], as_of: int = NEVER) -> list[Edge]: ...

    @abstractmethod
    def touches_of_apps(self, apps: Collection[str], as_of: int = NEVER) -> list[Touch]:
        """File-level touches of the given app ids that began by ``as_of``."""

    @abstractmethod
    def contents(self, *, hashes: Collection[str] = (), artifacts: Collection[str] = (),
                 as_of: int = NEVER) -> list[Content]:
        """The content facts (a file's bytes as an app read or wrote them) with one of ``hashes``, or of one of
        ``artifacts``, recorded by ``as_of``: how copies of the same bytes are found."""

    @abstractmethod
    def versions(self, artifacts: Collection[str], as_of: int = NEVER) -> dict[str, list[VersionInfo]]:
        """Versions of each artifact root URI born by ``as_of``, oldest first."""

    @abstractmethod
    def find_nodes(
        self,
        kind: str,
        *,
        as_of: int = NEVER,
        where: dict[str, Any] | None = None,
        key_prefix: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[Node], int]:
        """Nodes of a kind whose properties equal ``where`` (as of), newest first; and the total."""

    @abstractmethod
    def dump(self) -> dict[str, Any]:
        """Everything, in a canonical order: two stores holding the same graph dump equal."""

    @abstractmethod
    def check(self) -> list[str]:
        """Referential integrity of what is stored, as problems found (empty: sound). `provenance check`."""

    @abstractmethod
    def stats(self) -> dict[str, int]: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> LineageStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
