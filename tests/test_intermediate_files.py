"""A run's own intermediate files are steps of its pipeline: what one process (or a move) wrote and another
read in the same run carries the data on. Seen on jobs that write a temporary file and compress it, that
move a temporary file into place, and that edit a file in place (`sed -i`) in a later run; the answer is
checked against the data (which files hold each input's marker), certain items only.
"""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path

import pytest

from tests.test_capture_faults import needs_fanotify
from tests.test_cli import run

pytestmark = needs_fanotify
REPEATS = 5  # the capture's timing differs from run to run


def _job(home: Path, work: Path, name: str, script: str) -> None:
    (work / f"{name}.sh").write_text(script)
    # the job's stdin a pipe kept open, as under CI (it shifts the timing: there the inode `rm` freed was given
    # to the next file while the capture still held the old one's events)
    with subprocess.Popen(["python", "-m", "provenance.cli", "--home", str(home), "run", "--quiet", "--capture",
                           "fanotify", "--name", name, "--", "sh", f"{name}.sh"], cwd=work, stdin=subprocess.PIPE,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as p:
        rc = p.wait(timeout=120)  # (--quiet: nothing on stderr to fill its pipe, but for an error)
        err = p.stderr.read() if p.stderr else ""
    assert rc == 0, err


def _holds(path: Path, marker: str) -> bool:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return marker.encode() in data.upper()


def _certain(home: Path, work: Path, person: str) -> set[str]:
    r = run(home, "gdpr", str(work / "inbox" / f"{person}.csv"), "--json")
    assert r.returncode == 0, r.stderr
    g = json.loads(r.stdout)
    prefix = work.resolve().as_uri() + "/"
    return {x["uri"].removeprefix(prefix) for x in [*g["derived"], *g["copies"], *g["models"]]
            if x["certain"] and not x["deleted"]}


def _truth(work: Path, person: str) -> set[str]:
    marker = f"MARK{person.upper()}"
    return {str(p.relative_to(work)) for p in work.rglob("*") if p.is_file() and "inbox" not in p.parts
            and not p.name.endswith(".sh") and _holds(p, marker)}


@pytest.mark.parametrize("attempt", range(REPEATS))
def test_intermediate_files_carry_the_data_on(tmp_path: Path, attempt: int) -> None:
    home, work = tmp_path / "home", tmp_path / "work"
    for d in ("inbox", "out", "models"):
        (work / d).mkdir(parents=True)
    for p in ("a", "b", "c", "d"):
        (work / "inbox" / f"{p}.csv").write_text(f"id,x\n1,mark{p}\n")
    _job(home, work, "stage", "cp inbox/a.csv out/tmp.csv\n"  # a temporary copy, compressed, removed
                              "gzip -c out/tmp.csv > out/a.gz\n"
                              "rm out/tmp.csv\n"
                              "sort inbox/b.csv > out/.b.tmp && mv out/.b.tmp out/b.sorted\n"  # moved into place
                              "tr a-z A-Z < inbox/c.csv > out/c.up\n"
                              "cat inbox/d.csv > out/d.csv\n")
    _job(home, work, "edit", "sed -i 's/id/key/' out/c.up\n")  # edited in place by a later run
    _job(home, work, "pack", "gzip -c out/c.up > models/c.gz\n")
    for person in ("a", "b", "c", "d"):
        truth = _truth(work, person)
        assert truth, person  # (a test of the test: every input reached some output)
        assert _certain(home, work, person) == truth, person
