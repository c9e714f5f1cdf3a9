"""The Delta-log tailer against real Delta tables written by the deltalake package."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import CommitProperties, DeltaTable, write_deltalake

from provenance.config import load_settings
from provenance.connectors.delta import DeltaLogTailer, find_table_root
from provenance.stack import Stack, open_stack
from tests.conftest import Queries, ingest_lines
from tests.test_capture import needs_fanotify


def meta(app: str, user: str) -> CommitProperties:
    return CommitProperties(custom_metadata={"prov.app_id": app, "prov.user": user})


def make_table(path: Path) -> None:
    rows = pa.table({"id": [1, 2, 3], "income": [10, 20, 30]})
    write_deltalake(str(path), rows, commit_properties=meta("writer-0", "alice"))
    write_deltalake(str(path), rows, mode="append", commit_properties=meta("writer-1", "alice"))
    DeltaTable(str(path)).delete("id = 1", commit_properties=meta("cleaner", "bob"))


def tail(stack: Stack, *tables: Path) -> object:
    result = DeltaLogTailer(stack.bus, stack.settings.home / "delta_state.json").tail(tables)
    stack.processor.catch_up()
    return result


def test_commits_become_versions_with_their_writers(stack: Stack, tmp_path: Path) -> None:
    table = tmp_path / "lake" / "loans"
    make_table(table)
    result = tail(stack, table)
    assert (result.tables, result.commits, result.missing) == (1, 3, [])  # type: ignore[attr-defined]
    uri = table.resolve().as_uri()
    versions = stack.store.versions([uri])[uri]
    assert [(v.key, v.creator) for v in versions] == [("0", "writer-0"), ("1", "writer-1"), ("2", "cleaner")]
    q = Queries(stack.store, stack.rules)
    fp = q.footprint("cleaner")
    arts = {(a["version"], tuple(a["types"])) for a in fp["artifacts"]}
    assert arts == {("1", ("INPUT",)), ("2", ("OUTPUT_MODIFIED",))}  # the DELETE read version 1
    assert fp["app"]["users"] == ["bob"]
    assert fp["artifacts"][0]["type"] == "table"
    impact = q.impact(artifact=f"{uri}@1")
    assert {a["app_id"] for a in impact["apps"]} == {"cleaner"}
    audit = q.upstream(uri)
    assert audit["target"]["version"] == "2" and audit["users"] == ["alice", "bob"]
    # v2 ← cleaner ← v1 ← writer-1 (an append keeps version 0's rows) ← v0
    assert [(a["version"], [v["app_id"] for v in a["via"]]) for a in audit["artifacts"]] == [
        ("1", ["cleaner"]), ("0", ["writer-1"])]


def test_an_overwrite_does_not_derive_from_the_version_before(stack: Stack, tmp_path: Path) -> None:
    table = tmp_path / "t"
    write_deltalake(str(table), pa.table({"id": [1]}), commit_properties=meta("first", "alice"))
    write_deltalake(str(table), pa.table({"id": [2]}), mode="append", commit_properties=meta("appender", "alice"))
    write_deltalake(str(table), pa.table({"id": [3]}), mode="overwrite", commit_properties=meta("replacer", "bob"))
    tail(stack, table)
    q = Queries(stack.store, stack.rules)
    assert [a["version"] for a in q.upstream(f"{table}@1")["artifacts"]] == ["0"]
    assert q.upstream(f"{table}@2")["artifacts"] == []  # nothing of versions 0 and 1 is left in 2


def test_a_reader_is_linked_to_the_version_it_read(stack: Stack, tmp_path: Path) -> None:
    table = tmp_path / "t"
    make_table(table)
    tail(stack, table)
    read = {"source": "test", "kind": "file", "op": "read", "ts": 2**40, "app_id": "trainer",
            "uri": f"delta://{table.resolve()}@0"}
    ingest_lines(stack, [json.dumps(read)])
    fp = Queries(stack.store, stack.rules).footprint("trainer")
    assert [(a["version"], a["types"]) for a in fp["artifacts"]] == [("0", ["INPUT"])]


def test_tailing_again_adds_nothing(stack: Stack, tmp_path: Path) -> None:
    table = tmp_path / "t"
    make_table(table)
    tail(stack, table)
    before = stack.store.dump()
    assert tail(stack, table).commits == 0  # type: ignore[attr-defined]
    (stack.settings.home / "delta_state.json").unlink()  # forget where we were: every commit again
    again = tail(stack, table)
    assert again.commits == 3 and stack.store.dump() == before  # type: ignore[attr-defined]
    write_deltalake(str(table), pa.table({"id": [9], "income": [90]}), mode="append",
                    commit_properties=meta("writer-3", "alice"))
    assert tail(stack, table).commits == 1  # type: ignore[attr-defined]


def test_missing_tables_and_expired_commits_are_reported(stack: Stack, tmp_path: Path) -> None:
    table = tmp_path / "t"
    make_table(table)
    (table / "_delta_log" / f"{0:020d}.json").unlink()  # log retention removed the first commit
    result = tail(stack, table, tmp_path / "not-a-table")
    assert result.commits == 2  # type: ignore[attr-defined]
    assert any("commits 0..0 are no longer in the log" in m for m in result.missing)  # type: ignore[attr-defined]
    assert any("not-a-table: no _delta_log" in m for m in result.missing)  # type: ignore[attr-defined]


def test_find_table_root() -> None:
    assert find_table_root("/lake/t/_delta_log/00000000000000000001.json") == Path("/lake/t")
    assert find_table_root("/lake/t/part-0.parquet") is None


def test_cli_tail_delta(tmp_path: Path) -> None:
    table = tmp_path / "t"
    make_table(table)
    home = tmp_path / "home"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "provenance.cli", "--home", str(home), *args],
                              capture_output=True, text=True, timeout=120, check=False)

    r = cli("tail-delta", str(table), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"tables": 1, "commits": 3, "events": 5, "missing": []}
    r = cli("tail-delta", str(tmp_path / "nothing"))
    assert r.returncode == 1 and "no _delta_log" in r.stderr
    with open_stack(load_settings(home=home)) as s:
        assert s.processor.pending() == 0


@pytest.mark.parametrize("capture", ["audit-hook", pytest.param("fanotify", marks=needs_fanotify)])
def test_jobs_under_run_are_captured_without_code_changes(tmp_path: Path, capture: str) -> None:
    """The writer's app id reaches the commits, and a reader is linked to the exact version it read."""
    from provenance.connectors.launcher import Launcher

    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    (work / "write.py").write_text(
        "import pyarrow as pa\nfrom deltalake import write_deltalake\n"
        "t = pa.table({'id': [1, 2]})\n"
        "write_deltalake('lake/fg', t)\nwrite_deltalake('lake/fg', t, mode='append')\n")
    # reading through file_uris: deltalake's own readers can abort the process at exit (delta-rs #2184)
    (work / "read.py").write_text(
        "import pyarrow.parquet as pq\nfrom deltalake import DeltaTable\n"
        "print(pq.read_table(DeltaTable('lake/fg', version=0).file_uris()).num_rows)\n")
    with open_stack(load_settings(home=home)) as stack:
        launcher = Launcher(stack.bus, home, echo=False)
        writer = launcher.run([sys.executable, "write.py"], cwd=work, capture=capture)
        reader = launcher.run([sys.executable, "read.py"], cwd=work, capture=capture)
        stack.processor.catch_up()
        uri = (work / "lake" / "fg").resolve().as_uri()
        versions = stack.store.versions([uri])[uri]
        assert [(v.key, v.creator) for v in versions] == [("0", writer.app_id), ("1", writer.app_id)]
        fp = Queries(stack.store, stack.rules).footprint(reader.app_id)
        assert [(a["uri"], a["version"], a["types"]) for a in fp["artifacts"] if a["type"] == "table"] == [
            (uri, "0", ["INPUT"])]
    assert reader.log_path.read_text().strip() == "2"


@needs_fanotify
def test_any_language_delta_io_is_folded_into_table_versions(tmp_path: Path) -> None:
    """fanotify, no help from the job's runtime: a writer whose commits carry no app id is still named the
    writer (it created the commit file), and a shell reader of the table's files read the version whose
    log it read last."""
    from provenance.connectors.launcher import Launcher

    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    (work / "write.py").write_text(
        "import pyarrow as pa\nfrom deltalake import write_deltalake\n"
        "write_deltalake('lake/t', pa.table({'id': [1]}))\n"
        "write_deltalake('lake/t', pa.table({'id': [2]}), mode='append')\n")
    with open_stack(load_settings(home=home)) as stack:
        launcher = Launcher(stack.bus, home, echo=False)
        # -I: isolated mode ignores PYTHONPATH, so no hook is injected and the commits carry no app id
        writer = launcher.run([sys.executable, "-I", "write.py"], cwd=work, capture="fanotify")
        reader = launcher.run(["sh", "-c", "cat lake/t/_delta_log/*.json lake/t/*.parquet > copy.bin"], cwd=work,
                              capture="fanotify", name="shell-reader")
        stack.processor.catch_up()
        uri = (work / "lake" / "t").resolve().as_uri()
        log = sorted((work / "lake" / "t" / "_delta_log").glob("*.json"))
        assert all("prov.app_id" not in p.read_text() for p in log)
        versions = stack.store.versions([uri])[uri]
        assert [(v.key, v.creator) for v in versions] == [("0", writer.app_id), ("1", writer.app_id)]
        q = Queries(stack.store, stack.rules)
        fp = q.footprint(reader.app_id)
        assert [(a["uri"], a["version"], a["types"]) for a in fp["artifacts"] if a["type"] == "table"] == [
            (uri, "1", ["INPUT"])]
        # the table's part files are not artifacts of their own
        assert not [f for f in q.footprint(writer.app_id)["files"] if ".parquet" in f["uri"]]
