"""What each captured file event says about who, when and which content: the contract the processor
builds process-level lineage, time-order pruning and content identity on."""

from __future__ import annotations

import os
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

import blake3
import pytest

from provenance.config import load_settings
from provenance.connectors import fingerprint, processes
from provenance.connectors.fingerprint import attach_hashes, fingerprint_of
from provenance.connectors.launcher import Launcher
from provenance.connectors.processes import ProcessRecord
from provenance.stack import open_stack
from tests.test_capture_faults import Runner, needs_fanotify, raw_events

PROC = re.compile(r"^\d+(\.\d+)?$")
MODES = ["audit-hook", pytest.param("fanotify", marks=needs_fanotify)]


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Runner:
    return Runner(tmp_path, monkeypatch)


def blake(path: Path) -> str:
    return "blake3:" + blake3.blake3(path.read_bytes()).hexdigest(length=16)


def file_events(events: list[dict[str, Any]], work: Path) -> list[dict[str, Any]]:
    w = str(work.resolve()) + "/"
    return [e for e in events if e.get("kind") == "file" and str(e.get("uri", "")).startswith(w)]


def end_event(events: list[dict[str, Any]]) -> dict[str, Any]:
    return next(e for e in events if e.get("kind") == "app" and e["op"] in ("finished", "failed", "killed"))


@needs_fanotify
def test_fanotify_names_the_process_of_every_event(runner: Runner) -> None:
    work = runner.workdir()
    (work / "in.csv").write_text("a\n")
    # three processes read in.csv, the last twice; the shell writes out.txt
    script = (f"cat in.csv > out.txt; cat in.csv > /dev/null; "
              f"{sys.executable} -c 'open(\"in.csv\").read(); open(\"in.csv\").read()'")
    result, _, events = runner.run(work, ["sh", "-c", script], "fanotify")
    mine = file_events(events, work)
    reads = [e for e in mine if e["op"] == "read" and e["uri"].endswith("/in.csv")]
    assert len(reads) == 3  # each process's first read: the repeated read of one process is one
    assert len({e["attrs"]["proc"] for e in reads}) == 3
    listed = {p["proc"]: p for p in end_event(events)["attrs"]["processes"]}
    assert end_event(events)["attrs"]["processes_omitted"] == 0
    for e in mine:
        proc = e["attrs"]["proc"]
        assert PROC.match(proc) and proc.split(".")[0] == str(e["attrs"]["pid"]) and proc in listed
    roots = [p for p in listed.values() if p["ppid_proc"] is None]
    assert len(roots) == 1 and roots[0]["argv"] == ["sh", "-c", script]
    root = roots[0]
    children = [p for p in listed.values() if p is not root]
    assert {p["exe"] for p in children} >= {"cat"} and all(p["ppid_proc"] in listed for p in children)
    assert [p["proc"] for p in result.processes] == list(listed)
    assert all(p["start_ts"] <= (p["end_ts"] or p["start_ts"]) for p in listed.values())
    writer = next(e for e in mine if e["op"] == "write")
    # the shell opened out.txt for the redirection, the first cat wrote it: the event names whichever closed it
    # last, and the other as the one it was handed to
    cat = next(r["attrs"]["proc"] for r in reads if listed[r["attrs"]["proc"]]["exe"] == "cat"
               and r["attrs"]["proc"] in {writer["attrs"]["proc"], *writer["attrs"].get("shared_with", [])})
    assert {writer["attrs"]["proc"], *writer["attrs"].get("shared_with", [])} <= {root["proc"], cat}
    assert cat in {writer["attrs"]["proc"], *writer["attrs"].get("shared_with", [])}


@needs_fanotify
def test_fanotify_times_a_read_and_a_write_from_open_to_close(runner: Runner) -> None:
    work = runner.workdir()
    (work / "in.csv").write_text("a\n")
    (work / "job.py").write_text(textwrap.dedent("""
        import time
        with open("in.csv") as f, open("out.txt", "w") as g:
            time.sleep(0.5)
            g.write(f.read())
    """))
    _, _, events = runner.run(work, [sys.executable, "job.py"], "fanotify")
    mine = {(e["op"], Path(e["uri"]).name): e for e in file_events(events, work)}
    for key in (("read", "in.csv"), ("write", "out.txt")):
        e = mine[key]
        assert e["ts"] - e["attrs"]["opened_ts"] >= 300, e  # opened before the sleep, closed after it
    assert "ends_unknown" not in mine[("write", "out.txt")]["attrs"]


def test_audit_hook_knows_only_when_files_were_opened(runner: Runner) -> None:
    work = runner.workdir()
    (work / "in.csv").write_text("a\n")
    (work / "job.py").write_text("open('out.txt', 'w').write(open('in.csv').read())\n")
    _, _, events = runner.run(work, [sys.executable, "job.py"], "audit-hook")
    mine = {(e["op"], Path(e["uri"]).name): e["attrs"] for e in file_events(events, work)}
    read, made = mine[("read", "in.csv")], mine[("create", "out.txt")]
    assert read["opened_ts"] == next(e["ts"] for e in events if e.get("uri", "").endswith("/in.csv"))
    assert "ends_unknown" not in read and made["ends_unknown"] is True
    procs = end_event(events)["attrs"]["processes"]
    assert [p["proc"] for p in procs] == [read["proc"]] == [made["proc"]]
    assert procs[0]["argv"][-1] == "job.py" and procs[0]["end_ts"] >= procs[0]["start_ts"]


@pytest.mark.parametrize("capture", MODES)
def test_content_hashes_name_the_bytes_read_and_left(runner: Runner, capture: str) -> None:
    work = runner.workdir()
    (work / "in.csv").write_text("id\n1\n2\n")
    (work / "job.py").write_text(textwrap.dedent("""
        import os, time
        data = open("in.csv").read()
        open("draft.txt", "w").write("first")
        time.sleep(0.3)  # long enough for the watcher to read the first close before the second (else merged)
        open("draft.txt", "w").write("second, longer")  # the first write's content is gone at the end
        open("out.txt", "w").write(data.upper())
        os.rename("out.txt", "final.txt")  # moved after it was written: its content goes with it
    """))
    _, _, events = runner.run(work, [sys.executable, "job.py"], capture)
    by_name: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for e in file_events(events, work):
        by_name.setdefault((e["op"], Path(e["uri"]).name), []).append(e["attrs"])
    read = by_name[("read", "in.csv")][0]
    assert read["hash"] == blake(work / "in.csv")
    assert read["fingerprint"] == fingerprint_of(os.stat(work / "in.csv"))
    rename = next(e for e in events if e.get("op") == "rename")
    assert rename["attrs"]["hash"] == blake(work / "final.txt")
    if capture == "fanotify":  # the first write's bytes were overwritten before the run ended
        first, second = by_name[("write", "draft.txt")]
        assert "hash" not in first  # (no fingerprint either, if the watcher read both closes in one batch)
        assert first.get("hash_skipped") == "changed" or "fingerprint" not in first
        assert second["hash"] == blake(work / "draft.txt")
    else:  # the hook's writes end unknown: each names the content the run left
        assert {a["hash"] for op in ("create", "write") for a in by_name.get((op, "draft.txt"), [])} == {
            blake(work / "draft.txt")}
        assert all(a.get("fingerprint_taken") == "run_end" for a in by_name[("create", "draft.txt")])


def test_large_files_get_a_fingerprint_and_no_hash(runner: Runner, tmp_path: Path) -> None:
    work = runner.workdir()
    (work / "big.bin").write_bytes(b"x" * 4096)
    (work / "job.py").write_text("open('big.bin', 'rb').read()\n")
    with open_stack(load_settings(home=runner.home)) as stack:
        result = Launcher(stack.bus, runner.home, echo=False, hash_limit=1024).run(
            [sys.executable, "job.py"], capture="audit-hook", cwd=work)
        events = raw_events(stack, result.app_id)
    read = next(e["attrs"] for e in file_events(events, work) if e["uri"].endswith("big.bin"))
    assert read["fingerprint"]["size"] == 4096 and read["hash_skipped"] == "size" and "hash" not in read


def _event(path: Path, op: str = "read") -> dict[str, Any]:
    return {"kind": "file", "op": op, "uri": str(path),
            "attrs": {"fingerprint": fingerprint.stat_fingerprint(str(path))}}


def test_hash_cache_hashes_an_unchanged_file_once_ever(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data.csv"
    data.write_bytes(b"a,b\n" * 1000)
    calls: list[str] = []
    real = fingerprint.hash_file

    def counting(path: str, expected: dict[str, int]) -> tuple[str | None, str | None, int]:
        calls.append(path)
        return real(path, expected)

    monkeypatch.setattr(fingerprint, "hash_file", counting)
    db = tmp_path / "home" / "hashes.db"
    first, second = [_event(data)], [_event(data), _event(data)]
    attach_hashes(first, db)
    stats = attach_hashes(second, db)
    assert len(calls) == 1 and stats.cached == 1 and stats.hashed == 0
    assert first[0]["attrs"]["hash"] == second[0]["attrs"]["hash"] == second[1]["attrs"]["hash"] == blake(data)
    # new bytes with the old size and mtime put back (as rsync -t or tar do): the ctime tells, so it is hashed again
    st = os.stat(data)
    data.write_bytes(b"c,d\n" * 1000)
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns))
    third = [_event(data)]
    assert third[0]["attrs"]["fingerprint"] == first[0]["attrs"]["fingerprint"]
    attach_hashes(third, db)
    assert len(calls) == 2 and third[0]["attrs"]["hash"] == blake(data) != first[0]["attrs"]["hash"]


def test_hashing_never_reads_devices_or_special_files(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    def read(path: str, fp: dict[str, int]) -> dict[str, Any]:
        return {"kind": "file", "op": "read", "uri": path, "attrs": {"fingerprint": fp}}

    events = [read(str(fifo), fingerprint_of(os.stat(fifo))), read("/dev/null", fingerprint_of(os.stat("/dev/null"))),
              read("/proc/self/status", {"size": 0, "mtime_ns": 0, "inode": 1, "dev": 1})]
    attach_hashes(events, tmp_path / "hashes.db")  # would block forever on the FIFO if it opened it to read
    assert [e["attrs"].get("hash_skipped") for e in events] == ["path", "path", "path"]
    assert not any("hash" in e["attrs"] for e in events)


def test_process_list_is_bounded_with_the_file_touching_processes_first() -> None:
    records = [ProcessRecord(proc=f"{i}.1", pid=i, start_ts=i, file_events=1 if i % 5 == 0 else 0,
                             ppid_proc="0.1" if i else None) for i in range(2_500)]
    listed, omitted = processes.bounded(records)
    assert (len(listed), omitted) == (2_000, 500)
    assert [p["pid"] for p in listed[:500]] == list(range(0, 2_500, 5))  # all 500 that touched files
    assert all("file_events" not in p for p in listed)
    assert listed[1]["ppid_proc"] == "0.1" and listed[0]["ppid_proc"] is None


def test_proc_key_survives_pid_reuse_and_argv_is_bounded() -> None:
    me = processes.starttime(os.getpid())
    assert me is not None and processes.proc_key(os.getpid(), me) == f"{os.getpid()}.{me}"
    assert processes.proc_key(42, None) == "42"
    assert processes.starttime(2**22 + 12345) is None  # no such process
    argv = processes.clip_argv(["x" * 500] * 30)
    assert len(argv) == 20 and {len(a) for a in argv} == {200}
