"""The one exception tree of `provenance`.

    ProvenanceError
    ├── ConfigError              bad settings or configuration file (names the file and line)
    │   └── RulesError           invalid inference-rules file (names the offending rule)
    ├── EventError               a record that cannot become a canonical event (dead-lettered)
    ├── BusError                 the log / broker failed (driver errors are translated to this)
    ├── StoreError               the lineage store failed
    └── QueryError               a query that cannot be answered as asked
        └── NotFoundError        the app / artifact / URI named is not in the graph

Adapters translate their driver's exceptions at the boundary (``raise BusError(...) from exc``),
so callers handle one tree whatever backend runs underneath.
"""

from __future__ import annotations


class ProvenanceError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(ProvenanceError):
    """Settings or a configuration file are invalid."""


class RulesError(ConfigError):
    """The inference-rules file is invalid; the message names the rule."""


class EventError(ProvenanceError):
    """A raw record could not be turned into canonical events."""


class BusError(ProvenanceError):
    """The bus (embedded log or Kafka) failed."""


class StoreError(ProvenanceError):
    """The lineage store failed."""


class SearchError(ProvenanceError):
    """The search index failed (a server down, a refused document)."""


class QueryError(ProvenanceError):
    """A query was asked in a way that cannot be answered."""


class NotFoundError(QueryError):
    """The thing named by the query does not exist (as of the time asked)."""
