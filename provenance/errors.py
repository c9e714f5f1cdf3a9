"""The one exception tree of `provenance`.

    ProvenanceError
    ├── ConfigError              bad settings or configuration file (names the file and line)
    │   ├── RulesError           invalid inference-rules file (names the offending rule)
    │   └── MappingError         invalid CDC table-mapping file (names the file, line, table and field)
    ├── EventError               a record that cannot become a canonical event (dead-lettered)
    ├── BusError                 the log / broker failed (driver errors are translated to this)
    │   └── LogFullError         … because its disk is full (also a DiskFullError)
    ├── StoreError               the lineage store failed
    │   ├── StoreFullError       … because its disk (or its size limit) is full (also a DiskFullError)
    │   └── RecordRefused        … because a value of the batch cannot be stored (the processor finds the
    │                            record and dead-letters it; other store errors are waited out and retried)
    ├── DiskFullError            a write found no room: nothing of it was kept
    ├── SearchError              the search index failed
    ├── SourceError              a source could not be read (a job not started, the Debezium engine stopped)
    ├── AccessError              a request was not allowed
    │   ├── AuthError            no or bad credentials (HTTP 401)
    │   ├── Forbidden            valid credentials, not allowed (HTTP 403)
    │   └── BadOrigin            a cross-site or wrong-host request (HTTP 403)
    ├── PayloadTooLarge          a request body over the limit (HTTP 413)
    └── QueryError               a query that cannot be answered as asked (HTTP 400)
        └── NotFoundError        the app / artifact / URI named is not in the graph, or not visible (404)

Adapters translate their driver's exceptions at the boundary (``raise BusError(...) from exc``),
so callers handle one tree whatever backend runs underneath. The API maps each class to one status
and one JSON body (`provenance.api.app`); the CLI to one exit status (`provenance.cli`).
"""

from __future__ import annotations


class ProvenanceError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(ProvenanceError):
    """Settings or a configuration file are invalid."""


class RulesError(ConfigError):
    """The inference-rules file is invalid; the message names the rule."""


class MappingError(ConfigError):
    """A CDC table-mapping file is invalid; the message names the file, line, table and field."""


class EventError(ProvenanceError):
    """A raw record could not be turned into canonical events."""


class BusError(ProvenanceError):
    """The bus (embedded log or Kafka) failed."""


class StoreError(ProvenanceError):
    """The lineage store failed."""


class DiskFullError(ProvenanceError):
    """The disk holding the store or the log is full: nothing of the failed write was kept."""


class StoreFullError(StoreError, DiskFullError):
    """The store's disk (or its size limit) is full; the batch was rolled back and will come again."""


class RecordRefused(StoreError):
    """The store cannot take a value of this batch (too big, of a type it does not store): not a failure
    of the store, so retrying cannot help; the processor isolates the record and dead-letters it."""


class LogFullError(BusError, DiskFullError):
    """The log's disk is full; the records of the failed append were not appended."""


class SearchError(ProvenanceError):
    """The search index failed (a server down, a refused document)."""


class SourceError(ProvenanceError):
    """A connector could not read its source: a job that could not start, a CDC engine that stopped."""


class AccessError(ProvenanceError):
    """A request was not allowed."""


class AuthError(AccessError):
    """No valid credentials (HTTP 401)."""


class Forbidden(AccessError):
    """Valid credentials, not allowed (HTTP 403)."""


class BadOrigin(AccessError):
    """A state-changing request from another site, or a request for a host this server is not (HTTP 403)."""


class PayloadTooLarge(ProvenanceError):
    """A request body over the size limit (HTTP 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is over the {limit} byte limit")
        self.limit = limit


class QueryError(ProvenanceError):
    """A query was asked in a way that cannot be answered."""


class NotFoundError(QueryError):
    """The thing named by the query does not exist (as of the time asked), or the caller may not see it."""
