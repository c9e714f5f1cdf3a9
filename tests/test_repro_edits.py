"""`repro` sees a code edit made between two runs of a job, with git and without: the code file's content
is its version, whoever changed it and whether or not git knows."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.test_capture_faults import needs_fanotify
from tests.test_cli import run

CAPTURES = ["audit-hook", pytest.param("fanotify", marks=needs_fanotify)]
TRAIN = """import csv
rows = list(csv.reader(open("data.csv")))
with open("out.txt", "w") as f:
    f.write(str(len(rows)))
"""


def git(work: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "init.defaultBranch=main",
                    *args], cwd=work, check=True, capture_output=True)


def job(home: Path, work: Path, capture: str) -> str:
    r = subprocess.run(["python", "-m", "provenance.cli", "--home", str(home), "run", "--quiet", "--capture", capture,
                        "--name", "train", "--", "python", "train.py"], cwd=work, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    apps = json.loads(run(home, "apps", "--json").stdout)["apps"]
    return str(apps[0]["app_id"])


def ask(home: Path, *args: str) -> Any:
    r = run(home, *args, "--json")
    assert r.returncode in (0, 3), r.stderr  # 3: not a reproduction
    return json.loads(r.stdout)


@pytest.mark.parametrize("with_git", [False, True], ids=["no-git", "git"])
@pytest.mark.parametrize("capture", CAPTURES)
def test_repro_reports_a_code_edit_between_two_runs(tmp_path: Path, capture: str, with_git: bool) -> None:
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    (work / "data.csv").write_text("a,b\n1,2\n")
    (work / "train.py").write_text(TRAIN)
    if with_git:
        git(work, "init", "-q")
        git(work, "add", "-A")
        git(work, "commit", "-qm", "first")
    a = job(home, work, capture)
    same = ask(home, "repro", a, a)
    assert same["same"]["code"] is True and same["reproducible"] is True  # (a run reproduces itself)

    (work / "train.py").write_text(TRAIN.replace("len(rows)", "len(rows) - 1"))  # edited outside any run
    if with_git:
        git(work, "commit", "-qam", "tuned")
    b = job(home, work, capture)

    cmp = ask(home, "repro", a, b)
    assert cmp["reproducible"] is False and cmp["same"]["code"] is False
    assert cmp["same"]["inputs"] is True  # the same data.csv, by content
    changed = {Path(c["uri"]).name: c for c in cmp["code"]["files"]["changed"]}
    assert set(changed) == {"train.py"} and changed["train.py"]["a"] != changed["train.py"]["b"]
    assert any("code files read differ" in w for w in cmp["warnings"])
    if with_git:
        assert cmp["code"]["git"]["a"] != cmp["code"]["git"]["b"]
    else:
        assert cmp["code"]["git"]["a"] is None and cmp["code"]["git"]["b"] is None

    since = ask(home, "repro", a)  # the run against what was captured since: the newer code
    assert since["same"]["code"] is False and since["b"]["app_id"] == b

    code = ask(home, "artifact", str(work / "train.py"))
    assert [v["outside"] for v in code["versions"]] == [True, True]  # no run wrote either version
    assert [v["version"] for v in code["versions"]] == [*changed["train.py"]["a"], *changed["train.py"]["b"]]
    readable = run(home, "artifact", str(work / "train.py"))
    assert "changed outside any captured run" in readable.stdout

    # each output's audit names the code version that made it
    audits = [ask(home, "audit", f"{work / 'out.txt'}@{v}") for v in ("v1", "v2")]
    code = [{(a["uri"], a["version"]) for a in audit["artifacts"] if a["type"] == "code"} for audit in audits]
    train = (work / "train.py").resolve().as_uri()
    assert code == [{(train, changed["train.py"]["a"][0])}, {(train, changed["train.py"]["b"][0])}]
