"""The capture faults of issue 14, each repeated: every run gets the exact footprint, or says what it missed.

Under fanotify half of the runs make the watcher fall behind the job on purpose (it sleeps before
reading the queue for the first time, until the job has ended), which is when the faults showed:
the directory named by an event had been removed or renamed by the time the watcher read it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import provenance
from provenance.bus.port import raw_topic
from provenance.config import load_settings
from provenance.connectors import fanotify
from provenance.connectors.launcher import Launcher, RunResult
from provenance.stack import Stack, open_stack
from tests.conftest import Queries

FANOTIFY_UNAVAILABLE = fanotify.probe()
needs_fanotify = pytest.mark.skipif(FANOTIFY_UNAVAILABLE is not None,
                                    reason=f"fanotify capture needs root: {FANOTIFY_UNAVAILABLE}")
REPEATS = 20
LAG_S = 0.4  # longer than each job below takes: the watcher reads the queue only after the job is done
TREE = str(Path(provenance.__file__).resolve().parent.parent)  # the provenance under test, for subprocesses


def raw_events(stack: Stack, app_id: str) -> list[dict[str, Any]]:
    """The canonical events the launcher put on the bus for one app (what the processor will read)."""
    return [e for e in raw_events_all(stack) if e.get("app_id") == app_id]


def files(fp: dict[str, Any], under: Path) -> dict[str, list[str]]:
    prefix = under.resolve().as_uri() + "/"
    return {f["uri"][len(prefix):]: f["types"] for f in fp["files"] if f["uri"].startswith(prefix)}


class Runner:
    """Runs jobs in fresh working directories under one home, optionally with a lagging watcher."""

    def __init__(self, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp, self.home = tmp, tmp / "home"
        self.n = 0
        self.lag = False
        drain = fanotify.Watcher._drain_fanotify

        def lagging(watcher: fanotify.Watcher) -> int:
            if self.lag and not getattr(watcher, "_test_lagged", False):
                watcher._test_lagged = True  # type: ignore[attr-defined]
                time.sleep(LAG_S)
            return drain(watcher)

        monkeypatch.setattr(fanotify.Watcher, "_drain_fanotify", lagging)

    def workdir(self) -> Path:
        self.n += 1
        work = self.tmp / f"run{self.n}" / "work"
        work.mkdir(parents=True)
        return work

    def run(self, work: Path, argv: list[str], capture: str) -> tuple[RunResult, dict[str, Any], list[dict[str, Any]]]:
        with open_stack(load_settings(home=self.home)) as stack:
            result = Launcher(stack.bus, self.home, echo=False).run(argv, capture=capture, cwd=work)
            stack.processor.catch_up()
            fp = Queries(stack.store, stack.rules).footprint(result.app_id)
            return result, fp, raw_events(stack, result.app_id)


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runner]:
    yield Runner(tmp_path, monkeypatch)


def unresolved(result: RunResult) -> list[dict[str, object]]:
    return [g for g in result.gaps if g.get("kind") == "unresolved_path"]


# -- a. the audit hook and dir_fd ------------------------------------------------------------------
DIR_FD_JOB = """
    import functools, os, shutil
    shutil.rmtree("work")  # removes work/a.csv through dir_fd-relative calls, never ./a.csv
    os.mkdir("box")
    fd = os.open("box", os.O_RDONLY)
    with open("made.txt", "w", opener=functools.partial(os.open, dir_fd=fd)) as f:
        f.write("m")  # box/made.txt, though the builtin open's own audit event names ./made.txt
    os.rename("made.txt", "moved.txt", src_dir_fd=fd, dst_dir_fd=fd)
    with open("moved.txt", opener=functools.partial(os.open, dir_fd=fd)) as f:
        f.read()
    w = os.open("tagged.txt", os.O_WRONLY | os.O_CREAT, dir_fd=fd)
    os.setxattr(w, "user.prov.pii", b"true")  # an xattr set through a descriptor
    os.close(w)
    os.unlink("moved.txt", dir_fd=fd)
    os.close(fd)
"""


@pytest.mark.slow
def test_audit_hook_resolves_dir_fd_relative_calls(runner: Runner) -> None:
    for _ in range(REPEATS):
        work = runner.workdir()
        (work / "a.csv").write_text("keep me")
        (work / "made.txt").write_text("not the job's")
        (work / "work").mkdir()
        (work / "work" / "a.csv").write_text("remove me")
        (work / "job.py").write_text(textwrap.dedent(DIR_FD_JOB))
        result, fp, events = runner.run(work, [sys.executable, "job.py"], "audit-hook")
        assert (result.state, result.gaps) == ("finished", [])
        assert (work / "a.csv").exists() and (work / "made.txt").exists() and not (work / "work").exists()
        assert files(fp, work) == {
            "job.py": ["INPUT"],
            "work/a.csv": ["OUTPUT_REMOVED"],
            "box/made.txt": ["OUTPUT_TMP"],  # created, then renamed away
            "box/moved.txt": ["OUTPUT_TMP"],  # renamed here, read back, removed
            "box/tagged.txt": ["OUTPUT_ADDED"],
        }
        tags = [(e["uri"], e["attrs"]["name"]) for e in events if e.get("op") == "xattr_set"]
        assert tags == [(str(work.resolve() / "box" / "tagged.txt"), "user.prov.pii")]


def test_audit_hook_reports_an_os_open_whose_dir_fd_it_cannot_know(runner: Runner) -> None:
    """``posix.open`` is ``os.open`` before the hook wrapped it: a relative path through it may be
    relative to any directory, so it is reported, not put under the working directory."""
    work = runner.workdir()
    (work / "job.py").write_text(textwrap.dedent("""
        import os, posix
        fd = posix.open("raw.txt", os.O_WRONLY | os.O_CREAT)
        os.close(fd)
        open("seen.txt", "w").close()
    """))
    result, fp, _ = runner.run(work, [sys.executable, "job.py"], "audit-hook")
    assert files(fp, work) == {"job.py": ["INPUT"], "seen.txt": ["OUTPUT_ADDED"]}
    assert [(g["op"], g["name"]) for g in unresolved(result)] == [("create", "raw.txt")]


# -- b. fanotify and directories removed before the watcher reads the queue ------------------------
@pytest.mark.slow
@needs_fanotify
def test_fanotify_keeps_reads_and_deletes_in_a_removed_directory(runner: Runner) -> None:
    for i in range(REPEATS):
        runner.lag = i % 2 == 1
        work = runner.workdir()
        (work / "inbox").mkdir()
        (work / "inbox" / "a.csv").write_text("id\n1\n")
        result, fp, _ = runner.run(work, ["sh", "-c", "cat inbox/a.csv > out.txt; rm -rf inbox"], "fanotify")
        assert result.state == "finished"
        assert (files(fp, work), result.gaps) == ({"inbox/a.csv": ["INPUT", "OUTPUT_REMOVED"],
                                                    "out.txt": ["OUTPUT_ADDED"]}, []), f"run {i}, lag {runner.lag}"


@needs_fanotify
def test_fanotify_names_what_it_cannot_place_as_a_gap(runner: Runner) -> None:
    """A directory made before the run outside the working directory is not known by handle; when the
    job removes it before the watcher reads the queue, its files cannot be named: each lost operation
    is a capture gap with its name, never a silent loss."""
    runner.lag = True
    work = runner.workdir()
    elsewhere = runner.tmp / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "b.csv").write_text("x")
    result, fp, _ = runner.run(work, ["sh", "-c", f"cat {elsewhere}/b.csv > out.txt; rm -rf {elsewhere}"],
                               "fanotify")
    assert files(fp, work) == {"out.txt": ["OUTPUT_ADDED"]}
    assert sorted((g["op"], g["name"]) for g in unresolved(result)) == [("delete", "b.csv"), ("read", "b.csv")]


# -- c. directory renames move what they hold ------------------------------------------------------
DIRECTORY_RENAME_JOB = """
    import os, shutil
    os.mkdir("out.tmp")
    shutil.copyfile("in.csv", "out.tmp/part0")
    os.rename("out.tmp", "out")
"""


@pytest.mark.slow
@pytest.mark.parametrize("capture", ["audit-hook", pytest.param("fanotify", marks=needs_fanotify)])
def test_directory_rename_moves_its_files(runner: Runner, capture: str) -> None:
    for i in range(REPEATS):
        runner.lag = capture == "fanotify" and i % 2 == 1
        work = runner.workdir()
        (work / "in.csv").write_text("a,b\n1,2\n")
        if capture == "fanotify":
            argv = ["sh", "-c", "mkdir out.tmp; cat in.csv > out.tmp/part0; mv out.tmp out"]
            expected = {"in.csv": ["INPUT"], "out.tmp/part0": ["OUTPUT_TMP"], "out/part0": ["OUTPUT_ADDED"]}
        else:
            (work / "job.py").write_text(textwrap.dedent(DIRECTORY_RENAME_JOB))
            argv = [sys.executable, "job.py"]
            expected = {"job.py": ["INPUT"], "in.csv": ["INPUT"], "out.tmp/part0": ["OUTPUT_TMP"],
                        "out/part0": ["OUTPUT_ADDED"]}
        result, fp, events = runner.run(work, argv, capture)
        assert (files(fp, work), result.gaps) == (expected, []), f"run {i}, lag {runner.lag}"
        renames = [(e["uri"], e["dst"], e["attrs"].get("via_directory_rename")) for e in events if e["op"] == "rename"]
        w = str(work.resolve())
        assert renames == [(f"{w}/out.tmp/part0", f"{w}/out/part0", True)]
        # the moved file's content is known at its new name
        moved = next(e for e in events if e["op"] == "rename")
        assert moved["attrs"]["hash"].startswith("blake3:") and "hash_skipped" not in moved["attrs"]


@needs_fanotify
def test_directory_rename_does_not_claim_files_made_after_it(runner: Runner) -> None:
    """The watcher walks the new directory when it reads the rename, possibly well after it: a file
    the job made there after the rename is not reported as moved."""
    runner.lag = True
    work = runner.workdir()
    (work / "d").mkdir()
    (work / "d" / "old.txt").write_text("before the run")
    result, fp, events = runner.run(work, ["sh", "-c", "mv d e; echo new > e/new.txt"], "fanotify")
    w = str(work.resolve())
    renames = sorted((e["uri"], e["dst"]) for e in events if e["op"] == "rename")
    assert renames == [(f"{w}/d/old.txt", f"{w}/e/old.txt")]
    assert files(fp, work) == {"d/old.txt": ["OUTPUT_REMOVED"], "e/old.txt": ["OUTPUT_ADDED"],
                               "e/new.txt": ["OUTPUT_ADDED"]}
    assert result.gaps == []


# -- d. jobs the audit hook cannot see -------------------------------------------------------------
def cli(home: Path, work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "provenance.cli", "--home", str(home), *args], cwd=work,
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "PYTHONPATH": TREE})


def test_audit_hook_says_when_it_cannot_see_the_job(runner: Runner) -> None:
    work = runner.workdir()
    (work / "a").write_text("x")
    (work / "job.py").write_text("open('a').read()\nopen('c', 'w').write('y')\n")
    for argv in (["sh", "-c", "cat a > b"], [sys.executable, "job.py"]):
        r = cli(runner.home, work, "run", "--capture", "audit-hook", "--", *argv)
        assert r.returncode == 0, r.stderr
    assert (work / "b").read_text() == "x"
    with open_stack(load_settings(home=runner.home)) as stack:
        events = raw_events_all(stack)
    command = {e["app_id"]: e["attrs"]["command"][0] for e in events if e.get("op") == "submitted"}
    gaps = {command[e["app_id"]]: e["attrs"]["capture_gaps"] for e in events if e.get("op") == "finished"}
    assert gaps.keys() == {"sh", sys.executable}
    assert [(g["kind"], g["programs"]) for g in gaps["sh"]] == [("unseen_processes", ["sh"])]
    assert "sees only Python" in str(gaps["sh"][0]["reason"])
    assert gaps[sys.executable] == []  # a pure Python job: nothing unseen


def raw_events_all(stack: Stack) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    with stack.bus.consumer(f"test-{uuid.uuid4().hex}", [raw_topic("canonical")], start=lambda _t, _p: 0) as c:
        while batch := c.poll(10_000):
            out.extend(json.loads(m.value) for m in batch)
    return out


def test_audit_hook_notes_the_programs_a_python_job_starts(runner: Runner) -> None:
    work = runner.workdir()
    (work / "job.py").write_text(textwrap.dedent("""
        import os, subprocess, sys
        subprocess.run(["cat", "job.py"], stdout=subprocess.DEVNULL, check=True)  # not Python
        os.system("true")  # a shell
        subprocess.run([sys.executable, "-c", "pass"], check=True)  # Python with the hook: seen
        subprocess.run([sys.executable, "-I", "-c", "pass"], check=True)  # isolated: no hook
        subprocess.run([sys.executable, "-c", "pass"], env={"PATH": os.environ["PATH"]}, check=True)  # no hook
    """))
    result, _, _ = runner.run(work, [sys.executable, "job.py"], "audit-hook")
    unseen = [g for g in result.gaps if g.get("kind") == "unseen_processes"]
    python = Path(sys.executable).name
    assert len(unseen) == 1 and unseen[0]["programs"] == sorted({"cat", "sh", python})
    assert len(result.gaps) == 1


def test_python_job_through_exec_keeps_all_its_events(runner: Runner) -> None:
    """A process that execs another Python keeps its pid and start time: both images' events are kept
    (distinct event ids), and its spool counts as flushed."""
    work = runner.workdir()
    (work / "job.py").write_text(textwrap.dedent("""
        import os, sys
        open("first.txt", "w").write("1")
        os.execv(sys.executable, [sys.executable, "-c", "open('second.txt', 'w').write('2')"])
    """))
    result, fp, events = runner.run(work, [sys.executable, "job.py"], "audit-hook")
    assert result.gaps == []
    assert files(fp, work) == {"job.py": ["INPUT"], "first.txt": ["OUTPUT_ADDED"], "second.txt": ["OUTPUT_ADDED"]}
    ids = [e["event_id"] for e in events if e["kind"] == "file"]
    assert len(ids) == len(set(ids))
    assert len(result.processes) == 1 and result.processes[0]["argv"][1:2] == ["-c"]  # the program it became
