"""`provenance run` on real jobs, under each capture mode: each footprint is exactly what the job did.

fanotify needs CAP_SYS_ADMIN: CI runs as root, so it runs there; elsewhere its tests are skipped with the
reason the kernel gave.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from provenance.config import load_settings
from provenance.connectors import fanotify
from provenance.connectors.launcher import Launcher
from provenance.stack import Stack, open_stack
from tests.conftest import Queries
from tests.test_capture_faults import TREE

FANOTIFY_UNAVAILABLE = fanotify.probe()
needs_fanotify = pytest.mark.skipif(FANOTIFY_UNAVAILABLE is not None,
                                    reason=f"fanotify capture needs root: {FANOTIFY_UNAVAILABLE}")
MODES = ["audit-hook", pytest.param("fanotify", marks=needs_fanotify)]


@pytest.fixture(params=MODES)
def env(tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, Any]:
    work = tmp_path / "work"
    work.mkdir()
    return {"home": tmp_path / "home", "work": work, "capture": request.param}


@pytest.fixture
def fenv(tmp_path: Path) -> dict[str, Any]:
    """For what only fanotify can see (any language)."""
    if FANOTIFY_UNAVAILABLE is not None:
        pytest.skip(f"fanotify capture needs root: {FANOTIFY_UNAVAILABLE}")
    work = tmp_path / "work"
    work.mkdir()
    return {"home": tmp_path / "home", "work": work, "capture": "fanotify"}


def run_job(env: dict[str, Any], script: str, *, capture: str | None = None, name: str | None = None,
            argv: list[str] | None = None) -> tuple[Any, dict[str, Any], Stack]:
    (env["work"] / "job.py").write_text(textwrap.dedent(script))
    stack = open_stack(load_settings(home=env["home"]))
    launcher = Launcher(stack.bus, env["home"], echo=False)
    result = launcher.run(argv or [sys.executable, "job.py"], name=name, capture=capture or env["capture"],
                          cwd=env["work"])
    stack.processor.catch_up()
    fp = Queries(stack.store, stack.rules).footprint(result.app_id)
    return result, fp, stack


def files(fp: dict[str, Any], under: Path) -> dict[str, list[str]]:
    prefix = under.resolve().as_uri() + "/"
    return {f["uri"][len(prefix):]: f["types"] for f in fp["files"] if f["uri"].startswith(prefix)}


def test_python_job_footprint_is_exactly_what_it_did(env: dict[str, Any]) -> None:
    (env["work"] / "in.csv").write_text("a,b\n1,2\n")
    (env["work"] / "old.txt").write_text("x")
    result, fp, stack = run_job(env, """
        import json, os, shutil
        os.makedirs("out", exist_ok=True)
        rows = open("in.csv").read()
        with open("out/result.json", "w") as f:
            json.dump({"rows": rows.count("\\n")}, f)
        with open("scratch.bin", "wb") as f:
            f.write(b"x")
        os.remove("scratch.bin")
        shutil.copyfile("out/result.json", "out/copy.json")
        os.replace("out/copy.json", "out/final.json")
        os.setxattr("out/final.json", "user.prov.pii", b"true")
        with open("old.txt", "a") as f:
            f.write("more")
        os.remove("in.csv")
        print("ok")
    """, name="etl")
    assert (result.state, result.exit_code, result.gaps) == ("finished", 0, [])
    assert files(fp, env["work"]) == {
        "job.py": ["INPUT"],  # the job's code is an input too
        "in.csv": ["INPUT", "OUTPUT_REMOVED"],
        "old.txt": ["OUTPUT_MODIFIED"],
        "out/result.json": ["OUTPUT_ADDED"],
        "out/copy.json": ["OUTPUT_TMP"],
        "out/final.json": ["OUTPUT_ADDED"],
        "scratch.bin": ["OUTPUT_TMP"],
    }
    # nothing else: no interpreter, library or bytecode files; the only other item is the job's log
    others = [f["uri"] for f in fp["files"] if not f["uri"].startswith(env["work"].resolve().as_uri())]
    assert others == [result.log_path.resolve().as_uri()]
    tags = {a["uri"].rsplit("/", 1)[-1]: a["tags"] for a in fp["artifacts"]}
    assert tags["final.json"] == {"pii": "true"}
    assert result.log_path.read_text() == "ok\n"
    stack.close()


def test_app_attributes(env: dict[str, Any]) -> None:
    subprocess.run(["git", "init", "-q", str(env["work"])], check=True)
    (env["work"] / "tracked.txt").write_text("v1")
    for cmd in (["add", "tracked.txt"], ["-c", "user.email=t@e", "-c", "user.name=t", "commit", "-qm", "one"]):
        subprocess.run(["git", "-C", str(env["work"]), *cmd], check=True)
    (env["work"] / "tracked.txt").write_text("v2")  # dirty
    result, fp, stack = run_job(env, "import sys; print('hi'); sys.stderr.write('warn\\n')", name="train")
    app = fp["app"]
    p = app["props"]
    head = subprocess.run(["git", "-C", str(env["work"]), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert (app["job"], app["state"], app["exit_code"], app["git_commit"], app["git_dirty"]) == (
        "train", "finished", 0, head, True)
    assert p["command"] == [sys.executable, "job.py"] and p["cwd"] == str(env["work"].resolve())
    assert p["host"] and isinstance(p["pid"], int) and p["capture"] == env["capture"]
    assert p["python"] == ".".join(map(str, sys.version_info[:3])) and p["env_hash"].startswith("sha256:")
    assert any(pkg.lower().startswith("pydantic==") for pkg in p["packages"])
    assert p["hardware"]["cpus"] == os.cpu_count() and p["hardware"]["memory_bytes"] > 0
    assert p["cpu_user_s"] >= 0 and p["peak_rss_bytes"] > 0 and p["duration_ms"] >= 0
    assert app["ended_ts"] >= app["started_ts"]
    assert sorted(result.log_path.read_text().splitlines()) == ["hi", "warn"]
    logs = [a for a in fp["artifacts"] if a["type"] == "log"]
    assert [a["uri"] for a in logs] == [result.log_path.resolve().as_uri()]
    stack.close()


def test_process_tree_and_short_lived_children_are_attributed(env: dict[str, Any]) -> None:
    _, fp, stack = run_job(env, """
        import multiprocessing, subprocess, sys
        def child():
            open("from_fork.txt", "w").write("f")
        if __name__ == "__main__":
            p = multiprocessing.get_context("fork").Process(target=child)
            p.start(); p.join()
            subprocess.run([sys.executable, "-c", "open('from_exec.txt', 'w').write('e')"], check=True)
            subprocess.run([sys.executable, "-c", "import os; os.remove('from_exec.txt')"], check=True)
    """)
    assert files(fp, env["work"]) == {"job.py": ["INPUT"], "from_fork.txt": ["OUTPUT_ADDED"],
                                      "from_exec.txt": ["OUTPUT_TMP"]}
    stack.close()


def test_failing_job_keeps_its_partial_footprint(env: dict[str, Any]) -> None:
    result, fp, stack = run_job(env, """
        open("partial.out", "w").write("half")
        raise SystemExit(3)
    """)
    assert (result.state, result.exit_code) == ("failed", 3)
    assert fp["app"]["state"] == "failed" and fp["app"]["exit_code"] == 3
    assert files(fp, env["work"]) == {"job.py": ["INPUT"], "partial.out": ["OUTPUT_ADDED"]}
    stack.close()


def test_killed_job_is_recorded_with_its_capture_gap(env: dict[str, Any]) -> None:
    result, fp, stack = run_job(env, """
        import os, signal
        open("before.txt", "w").write("x")
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert (result.state, result.exit_code) == ("killed", 128 + signal.SIGKILL)
    assert fp["app"]["state"] == "killed" and fp["app"]["props"]["signal"] == "SIGKILL"
    gaps = fp["app"]["props"]["capture_gaps"]
    if env["capture"] == "audit-hook":  # the hook dies with the job: what it had not flushed is lost
        assert len(gaps) == 1 and "may be missing" in gaps[0]["reason"]  # reported, never silent
    else:  # the kernel saw it all
        assert gaps == [] and files(fp, env["work"]) == {"job.py": ["INPUT"], "before.txt": ["OUTPUT_ADDED"]}
    stack.close()


def test_capture_off_records_the_app_only(env: dict[str, Any]) -> None:
    result, fp, stack = run_job(env, "open('x.txt', 'w').write('x')", capture="off")
    assert result.capture == "off" and fp["app"]["props"]["capture"] == "off"
    assert files(fp, env["work"]) == {}
    assert (env["work"] / "x.txt").exists()
    stack.close()


def test_users_own_sitecustomize_still_runs(env: dict[str, Any], tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "sitecustomize.py").write_text("import os\nos.environ['MINE_LOADED'] = '1'\n")
    (env["work"] / "job.py").write_text("import os\nopen('seen.txt', 'w').write(os.environ.get('MINE_LOADED', '0'))\n")
    with open_stack(load_settings(home=env["home"])) as stack:
        result = Launcher(stack.bus, env["home"], echo=False).run(
            [sys.executable, "job.py"], cwd=env["work"], env={**os.environ, "PYTHONPATH": str(mine)})
        stack.processor.catch_up()
        fp = Queries(stack.store, stack.rules).footprint(result.app_id)
    assert (env["work"] / "seen.txt").read_text() == "1"
    assert files(fp, env["work"]) == {"job.py": ["INPUT"], "seen.txt": ["OUTPUT_ADDED"]}


def test_signals_are_forwarded_to_the_job(env: dict[str, Any]) -> None:
    (env["work"] / "job.py").write_text(textwrap.dedent("""
        import signal, sys, time
        def stop(signum, frame):
            open("got_term.txt", "w").write(str(signum))
            sys.exit(0)
        signal.signal(signal.SIGTERM, stop)
        print("ready", flush=True)
        time.sleep(300)  # a SIGTERM that is not passed on would leave it sleeping past the wait below
    """))
    p = subprocess.Popen([sys.executable, "-m", "provenance.cli", "--home", str(env["home"]), "run", "--",
                          sys.executable, "job.py"], cwd=env["work"], stdout=subprocess.PIPE, text=True,
                         stderr=subprocess.DEVNULL)
    assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=60) == 0
    p.stdout.close()
    assert (env["work"] / "got_term.txt").read_text() == str(int(signal.SIGTERM))


def test_cli_run_exit_codes(env: dict[str, Any]) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "provenance.cli", "--home", str(env["home"]), *args],
                              cwd=env["work"], capture_output=True, text=True, timeout=120, check=False)

    assert cli("run", "--", sys.executable, "-c", "raise SystemExit(7)").returncode == 7
    r = cli("run", "--", "no-such-program-xyz")
    assert r.returncode == 127 and "cannot start 'no-such-program-xyz'" in r.stderr
    assert cli("run").returncode == 2
    r = cli("run", "--capture", "telepathy", "--", "true")
    assert r.returncode == 2 and "telepathy" in r.stderr
    apps = json.loads(cli("apps", "--json").stdout)["apps"]
    assert {a["state"] for a in apps} == {"failed"} and {a["exit_code"] for a in apps} == {7, 127}


def test_non_python_commands(env: dict[str, Any]) -> None:
    (env["work"] / "a.txt").write_text("b\na\n")
    result, fp, stack = run_job(env, "", argv=["sort", "-o", "sorted.txt", "a.txt"])
    assert result.state == "finished" and (env["work"] / "sorted.txt").read_text() == "a\nb\n"
    if env["capture"] == "audit-hook":
        assert files(fp, env["work"]) == {}  # the audit hook sees Python only
    else:
        assert files(fp, env["work"]) == {"a.txt": ["INPUT"], "sorted.txt": ["OUTPUT_ADDED"]}
    assert fp["app"]["job"] == "sort"
    stack.close()


# -- what only fanotify sees: any language, whole process trees ------------------------------------
def test_shell_pipeline_footprint_is_exactly_what_it_did(fenv: dict[str, Any]) -> None:
    work = fenv["work"]
    (work / "raw.txt").write_text("b\na\nb\n")
    (work / "served").mkdir()
    result, fp, stack = run_job(fenv, "", argv=["sh", "-c", """
        sort raw.txt | uniq > uniq.txt
        gzip -k uniq.txt
        cp uniq.txt.gz served/
        tmp=$(mktemp -p .) && echo scratch > "$tmp" && rm "$tmp"
        mv uniq.txt final.txt
        (echo late > from_background.txt &)
        sleep 0.2
        rm raw.txt
    """], name="shell-stage")
    assert (result.state, result.gaps) == ("finished", [])
    got = files(fp, work)
    tmp = [k for k in got if k.startswith("tmp.")]
    assert len(tmp) == 1 and got.pop(tmp[0]) == ["OUTPUT_TMP"]
    assert got == {
        "raw.txt": ["INPUT", "OUTPUT_REMOVED"],
        "uniq.txt": ["OUTPUT_TMP"],  # written, then renamed away
        "final.txt": ["OUTPUT_ADDED"],
        "uniq.txt.gz": ["OUTPUT_ADDED"],  # cp read it too, but it is the job's own output
        "served/uniq.txt.gz": ["OUTPUT_ADDED"],
        "from_background.txt": ["OUTPUT_ADDED"],  # a short-lived grandchild, detached
    }
    # nothing from /usr, /lib, /etc, the interpreter or the shell's own files; only the job's log besides
    others = [f["uri"] for f in fp["files"] if not f["uri"].startswith(work.resolve().as_uri())]
    assert others == [result.log_path.resolve().as_uri()]
    assert fp["app"]["props"]["captured_processes"] >= 8
    stack.close()


def test_setfattr_tags_and_other_processes_are_not_attributed(fenv: dict[str, Any]) -> None:
    if shutil.which("setfattr") is None:
        pytest.skip("setfattr is not installed (Debian package attr; .ci/run installs it)")
    work = fenv["work"]
    (work / "people.csv").write_text("name\nAda\n")
    # another process, not started by the job, writes while the job runs
    outsider = subprocess.Popen(["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do echo $i > outsider.txt; "
                                 "sleep 0.05; done"], cwd=work)
    _, fp, stack = run_job(fenv, "", argv=["sh", "-c", """
        setfattr -n user.prov.pii -v true people.csv
        setfattr -n user.prov.owner -v dpo people.csv
        setfattr -x user.prov.owner people.csv
        sleep 0.6
    """])
    outsider.wait()
    assert files(fp, work) == {}  # tags are not reads or writes; the outsider is not the job
    with stack:
        uri = (work / "people.csv").resolve().as_uri()
        node = stack.store.nodes([f"artifact:{uri}"])[f"artifact:{uri}"]
        assert node.tags == {"pii": "true"}  # owner was set, then removed


def test_fanotify_unavailable_falls_back_and_says_so(env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """A capture failure never stops the job: it runs under the audit hook, and the gap is on the app."""
    monkeypatch.setattr(fanotify, "probe", lambda: "fanotify_init: Operation not permitted (needs root)")
    result, fp, stack = run_job(env, "open('out.txt', 'w').write('x')", capture="fanotify")
    assert (result.state, result.capture) == ("finished", "audit-hook")
    assert files(fp, env["work"]) == {"job.py": ["INPUT"], "out.txt": ["OUTPUT_ADDED"]}
    gaps = fp["app"]["props"]["capture_gaps"]
    assert len(gaps) == 1 and "Operation not permitted" in gaps[0]["reason"]
    stack.close()


def test_overflow_and_proc_connector_records_are_parsed() -> None:
    """The parts of the watcher a live kernel will not produce on demand: a queue overflow is counted
    (and reported as a gap by the launcher), and proc-connector fork records name parent and child."""
    w = fanotify.Watcher("app", None, mounts=[])
    overflow = fanotify._META.pack(fanotify._META.size, 3, 0, fanotify._META.size, fanotify.FAN_Q_OVERFLOW, -1, 0)
    assert w._parse(overflow * 2) == 2 and w.out.overflows == 2
    body = struct.pack("=IIQ", fanotify.PROC_EVENT_FORK, 0, 0) + struct.pack("=iiii", 10, 10, 11, 11)
    thread = struct.pack("=IIQ", fanotify.PROC_EVENT_FORK, 0, 0) + struct.pack("=iiii", 10, 10, 12, 10)
    msgs = b""
    for payload in (body, thread):
        cn = fanotify._CNMSG.pack(1, 1, 0, 0, len(payload), 0) + payload
        msgs += fanotify._NLMSG.pack(fanotify._NLMSG.size + len(cn), 3, 0, 0, 0) + cn
    assert list(fanotify.proc_events(msgs)) == [(fanotify.PROC_EVENT_FORK, 10, 11)]  # threads are not processes
    w.close()


# -- what the GDPR answer says, against the data: the reviewer's cases ------------------------------
def mark(name: str) -> str:
    return f"MARK{name.upper().replace('/', '').replace('.', '')}QZ"


def inbox(work: Path, *names: str) -> None:
    for name in names:
        path = work / "inbox" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("id,name\n" + "".join(f"{k},{mark(name)}-{k}\n" for k in range(3)))
    (work / "out").mkdir(exist_ok=True)


def holders(work: Path, name: str, outputs: list[str]) -> set[str]:
    """The outputs that hold the input's marker: the truth (gzip and tar.gz undone)."""
    import gzip
    import tarfile

    out = set()
    for rel in outputs:
        path = work / rel
        data = path.read_bytes()
        if rel.endswith(".tar.gz"):
            with tarfile.open(path) as tar:
                data = b"".join(f.read() for m in tar.getmembers() if (f := tar.extractfile(m)) is not None)
        elif rel.endswith(".gz"):
            data = gzip.decompress(data)
        if mark(name).encode() in data:
            out.add(rel)
    return out


def cli_env() -> dict[str, str]:
    """The environment of a CLI subprocess: the provenance under test, whatever the working directory."""
    return {**os.environ, "PYTHONPATH": TREE + os.pathsep + os.environ.get("PYTHONPATH", "")}


def gdpr(home: Path, work: Path, name: str) -> dict[str, bool]:
    """``provenance gdpr inbox/NAME --json``: each item found (a path relative to work, else its URI) → certain."""
    r = subprocess.run([sys.executable, "-m", "provenance.cli", "--home", str(home), "gdpr", f"inbox/{name}",
                        "--json", "--limit", "1000"], cwd=work, capture_output=True, text=True, timeout=300,
                       check=False, env=cli_env())
    assert r.returncode == 0, r.stderr
    answer = json.loads(r.stdout)
    prefix = work.resolve().as_uri() + "/"
    found: dict[str, bool] = {}
    for key in ("derived", "copies", "models"):
        for item in answer[key]:
            uri = item["uri"].removeprefix(prefix)
            found[uri] = found.get(uri, False) or item.get("certain", True)
    return found


def run_cli(home: Path, work: Path, *argv: str, grace: float | None = None) -> None:
    extra = ["--grace", str(grace)] if grace is not None else []
    r = subprocess.run([sys.executable, "-m", "provenance.cli", "--home", str(home), "run", "--quiet", "--capture",
                        "fanotify", *extra, "--", *argv], cwd=work, capture_output=True, text=True, timeout=300,
                       check=False, stdin=subprocess.DEVNULL, env=cli_env())
    assert r.returncode == 0, r.stderr


def app_gaps(home: Path, work: Path) -> list[dict[str, Any]]:
    r = subprocess.run([sys.executable, "-m", "provenance.cli", "--home", str(home), "apps", "--json"], cwd=work,
                       capture_output=True, text=True, timeout=300, check=True, env=cli_env())
    return [g for a in json.loads(r.stdout)["apps"] for g in (a.get("props") or {}).get("capture_gaps") or []]


@pytest.mark.parametrize("attempt", range(3))  # the parent writes while the child starts: timing differs each run
def test_what_a_parent_writes_into_its_childs_stdin_is_traced(fenv: dict[str, Any], attempt: int) -> None:
    """`tar czf` writes into the gzip it started through a pipe it made after its own exec; Python's
    `Popen(stdin=PIPE).communicate(data)` writes what it read after the child started: both outputs hold the
    input, certainly, and an input read after the child ended is not in its output."""
    work, home = fenv["work"], fenv["home"]
    inbox(work, "big/a.csv", "p1.csv", "c1.csv")
    (work / "job.py").write_text(textwrap.dedent("""
        import subprocess, time
        subprocess.run(["tar", "czf", "out/big.tar.gz", "-C", "inbox", "big"], check=True)
        p = subprocess.Popen(["gzip", "-c"], stdin=subprocess.PIPE, stdout=open("out/p1.gz", "wb"))
        time.sleep(0.3)
        p.communicate(open("inbox/p1.csv", "rb").read())
        time.sleep(0.3)
        open("out/c1.copy", "w").write(open("inbox/c1.csv").read())
    """))
    run_cli(home, work, sys.executable, "job.py")
    outputs = ["out/big.tar.gz", "out/p1.gz", "out/c1.copy"]
    for name, out in (("big/a.csv", "out/big.tar.gz"), ("p1.csv", "out/p1.gz")):
        assert holders(work, name, outputs) == {out}
        assert gdpr(home, work, name).get(out) is True, (name, gdpr(home, work, name))
    assert "out/p1.gz" not in gdpr(home, work, "c1.csv")  # read after gzip ended
    assert app_gaps(home, work) == []


def test_the_shells_create_of_a_redirect_is_the_commands(fenv: dict[str, Any]) -> None:
    """`n=$(wc -l < q1); sort q2 > out`: the shell holds what wc said of q1 and creates `out` for sort; sort made
    it from q2 alone. The create is sort's, as its writes are: q1 reaches it at most possibly (the shell could
    have passed what it held to sort in its arguments), never certainly."""
    work, home = fenv["work"], fenv["home"]
    inbox(work, "q1.csv", "q2.csv")
    run_cli(home, work, "sh", "-c", "n=$(wc -l < inbox/q1.csv); sort inbox/q2.csv > out/q2.sorted")
    assert holders(work, "q2.csv", ["out/q2.sorted"]) == {"out/q2.sorted"}
    assert holders(work, "q1.csv", ["out/q2.sorted"]) == set()
    assert gdpr(home, work, "q2.csv").get("out/q2.sorted") is True
    assert gdpr(home, work, "q1.csv").get("out/q2.sorted") is not True


@pytest.mark.parametrize("attempt", range(2))
def test_a_file_opened_for_writing_but_only_read_is_read(fenv: dict[str, Any], attempt: int) -> None:
    """SQLite opens a database read-write and a query only reads it; `open(f, "r+").read()` too. fanotify says
    "closed after writing" for both: they are inputs (not OUTPUT_MODIFIED), and what was made from them is
    found. A file opened `r+` and written is still written."""
    import sqlite3
    import time

    work, home = fenv["work"], fenv["home"]
    inbox(work, "rp.csv", "rw.csv")
    db = sqlite3.connect(work / "inbox" / "people.db")
    db.execute("create table people (name text)")
    db.execute("insert into people values (?)", (mark("people.db"),))
    db.commit()
    db.close()
    time.sleep(0.1)  # (files older than the job, as inputs are)
    (work / "job.py").write_text(textwrap.dedent("""
        import sqlite3
        rows = sqlite3.connect("inbox/people.db").execute("select name from people").fetchall()
        open("out/from_db.csv", "w").write("".join(r[0] + "\\n" for r in rows))
        text = open("inbox/rp.csv", "r+").read()
        open("out/rp.copy", "w").write(text)
        with open("inbox/rw.csv", "r+") as f:
            f.seek(0, 2)
            f.write("9,appended\\n")
    """))
    with open_stack(load_settings(home=home)) as stack:
        result = Launcher(stack.bus, home, echo=False).run([sys.executable, "job.py"], capture="fanotify", cwd=work)
        stack.processor.catch_up()
        fp = Queries(stack.store, stack.rules).footprint(result.app_id)
    got = files(fp, work)
    assert got["inbox/people.db"] == ["INPUT"] and got["inbox/rp.csv"] == ["INPUT"], got
    assert "OUTPUT_MODIFIED" in got["inbox/rw.csv"], got
    assert gdpr(home, work, "people.db").get("out/from_db.csv") is True
    assert gdpr(home, work, "rp.csv").get("out/rp.copy") is True
    assert "inbox/rp.csv" not in gdpr(home, work, "people.db")  # read, not written after the query


def test_a_detached_child_that_outlives_the_job_is_captured_or_named(fenv: dict[str, Any]) -> None:
    """`(sleep 1; tr … < in > out) &` detached: the run keeps capturing it until it ends (within the grace
    period), so its output is traced; with no grace, the run names it in a capture gap, never silently."""
    import time

    work, home = fenv["work"], fenv["home"]
    inbox(work, "z1.csv", "z2.csv")
    job = "(sleep 1; tr a-z A-Z < inbox/{0}.csv > out/{0}.up) >/dev/null 2>&1 &"
    run_cli(home, work, "sh", "-c", job.format("z1"))
    assert holders(work, "z1.csv", ["out/z1.up"]) == {"out/z1.up"}
    assert gdpr(home, work, "z1.csv").get("out/z1.up") is True
    assert app_gaps(home, work) == []
    run_cli(home, work, "sh", "-c", job.format("z2"), grace=0)
    gaps = app_gaps(home, work)
    assert [g["kind"] for g in gaps] == ["outlived_job"], gaps
    assert any(p["argv"] and p["argv"][0] in ("sh", "sleep") for p in gaps[0]["processes"]), gaps
    deadline = time.monotonic() + 10
    while not (work / "out" / "z2.up").exists() and time.monotonic() < deadline:  # let it finish in its directory
        time.sleep(0.1)
    time.sleep(0.2)


def test_files_staged_in_dev_shm_are_artifacts(fenv: dict[str, Any]) -> None:
    """/dev/shm is a tmpfs of real files: a run that stages data there for the next keeps the chain (the default
    rules ignore the rest of /dev only)."""
    import uuid

    work, home = fenv["work"], fenv["home"]
    inbox(work, "s1.csv")
    stage = Path("/dev/shm") / f"provenance-test-{uuid.uuid4().hex[:8]}"
    try:
        run_cli(home, work, "sh", "-c", f"mkdir {stage} && sort -r inbox/s1.csv > {stage}/s1.sorted")
        run_cli(home, work, "sh", "-c", f"gzip -c {stage}/s1.sorted > out/s1.gz")
        assert holders(work, "s1.csv", ["out/s1.gz"]) == {"out/s1.gz"}
        found = gdpr(home, work, "s1.csv")
        assert found.get("out/s1.gz") is True, found
        assert found.get((stage / "s1.sorted").as_uri()) is True, found
    finally:
        shutil.rmtree(stage, ignore_errors=True)
