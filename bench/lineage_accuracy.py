"""Precision and recall of GDPR answers on captured jobs, against ground truth read from the data itself.

    python -m bench.lineage_accuracy [--persons 12] [--capture fanotify audit-hook] [--json]

A workload of real jobs (shell tools and Python) is run under ``provenance run`` in each capture mode, on a
fresh home and a fresh copy of the data. Each person's file in ``inbox/`` holds rows with a marker no other
file holds. After the jobs, every file of the workspace is read (gzip undone) and the artifacts whose files
hold a person's marker are that person's *truth*: what a data-protection officer must erase or rebuild.
``provenance gdpr inbox/<person>.csv --json`` gives the answer: its certain items (derived, copies, models
and deployments) and its possible ones. Per capture mode, and per way an output was made (the category of
the job that wrote it), the table gives how many true items were found (recall) and how many items found
were true (precision), certain items alone and with the possible ones.

The jobs (``jobs/`` in the workspace; each category names the outputs it makes):

- ``copy``: ``ingest.sh`` copies each inbox file to ``data/raw/`` (``cp``) and archives it
  (``gzip -c … > archive/…``): one shell run, many commands;
- ``pipeline``: ``prepare.sh`` runs ``sort a | gzip > sorted/…``, ``cat a b | grep -v ^id > merged/…`` and
  ``tr a-z A-Z < a > upper/…``: pipes and redirections;
- ``time-order``: ``features.py`` (one Python process) writes ``features/early.csv`` from one merged file,
  waits a second, reads another and writes ``features/late.csv`` from both: the early output does not hold
  what was read after it was written;
- ``model``: ``train.py`` writes ``models/loan_model/1/model.pkl`` from the late features and one more
  merged file;
- ``deploy``: ``deploy.sh`` copies the model to ``serving/loan_scoring/model.pkl``;
- ``subprocess``: ``report.py`` runs ``zcat`` on an archive with ``subprocess.run(capture_output=True)`` and
  writes what it got to ``reports/``: the data passes through a pipe into the Python process, which the
  capture cannot see being read (a possible path, by design).

With ``--capture audit-hook`` the shell jobs are not seen at all (the hook lives in Python processes; the
runs say so as a capture gap), and a Python run is one flow: the figures say what that costs.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from provenance.processor.rules import load_rules

console = Console(width=200)
CATEGORIES = ("copy", "pipeline", "time-order", "model", "deploy", "subprocess")


def marker(i: int) -> str:
    return f"PERSONMARK{i:03d}QZX"  # upper case: survives `tr a-z A-Z`


def person(i: int) -> str:
    return f"p{i:03d}"


def build(work: Path, persons: int, workload: str = "shell") -> dict[str, str]:
    """Write the inbox and the jobs; return the category of each output path (relative to ``work``).
    ``workload``: "shell" (shell tools for the copies, the pipelines and the deploy) or "python" (the same
    steps, each job one Python process)."""
    for d in ("inbox", "jobs", "data/raw", "archive", "sorted", "merged", "upper", "features", "models/loan_model/1",
              "serving/loan_scoring", "reports"):
        (work / d).mkdir(parents=True, exist_ok=True)
    for i in range(persons):
        rows = ["id,name,amount"] + [f"{i * 10 + k},{marker(i)}-row{k},{100 + k}" for k in range(3)]
        (work / "inbox" / f"{person(i)}.csv").write_text("\n".join(rows) + "\n")
    category: dict[str, str] = {}
    ingest = []
    for i in range(persons):
        p = person(i)
        ingest += [f"cp inbox/{p}.csv data/raw/{p}.csv", f"gzip -c inbox/{p}.csv > archive/{p}.csv.gz"]
        category[f"data/raw/{p}.csv"] = category[f"archive/{p}.csv.gz"] = "copy"
    prepare = []
    pairs = [(i, i + 1) for i in range(0, persons - 1, 2)]
    for a, b in pairs:
        pa, pb = person(a), person(b)
        prepare += [f"sort data/raw/{pa}.csv | gzip > sorted/{pa}.csv.gz",
                    f"cat data/raw/{pa}.csv data/raw/{pb}.csv | grep -v '^id' > merged/{pa}_{pb}.csv",
                    f"tr a-z A-Z < data/raw/{pb}.csv > upper/{pb}.csv"]
        category[f"sorted/{pa}.csv.gz"] = category[f"merged/{pa}_{pb}.csv"] = category[f"upper/{pb}.csv"] = "pipeline"
    merged = [f"merged/{person(a)}_{person(b)}.csv" for a, b in pairs]
    early_in, late_in, train_in = merged[0], merged[1 % len(merged)], merged[2 % len(merged)]
    (work / "jobs" / "ingest.sh").write_text("set -e\n" + "\n".join(ingest) + "\n")
    (work / "jobs" / "prepare.sh").write_text("set -e\n" + "\n".join(prepare) + "\n")
    names = [person(i) for i in range(persons)]
    pair_names = [(person(a), person(b)) for a, b in pairs]
    (work / "jobs" / "ingest.py").write_text(textwrap.dedent(f"""
        import gzip, shutil
        for p in {names!r}:
            shutil.copyfile(f"inbox/{{p}}.csv", f"data/raw/{{p}}.csv")
            with open(f"inbox/{{p}}.csv", "rb") as src, gzip.open(f"archive/{{p}}.csv.gz", "wb") as dst:
                dst.write(src.read())
    """))
    (work / "jobs" / "prepare.py").write_text(textwrap.dedent(f"""
        import gzip
        for a, b in {pair_names!r}:
            ra = open(f"data/raw/{{a}}.csv").read().splitlines()
            with gzip.open(f"sorted/{{a}}.csv.gz", "wt") as f:
                f.write("\\n".join(sorted(ra)) + "\\n")
            rb = open(f"data/raw/{{b}}.csv").read().splitlines()
            with open(f"merged/{{a}}_{{b}}.csv", "w") as f:
                f.write("\\n".join(r for r in ra + rb if not r.startswith("id")) + "\\n")
            with open(f"upper/{{b}}.csv", "w") as f:
                f.write("\\n".join(rb).upper() + "\\n")
    """))
    (work / "jobs" / "features.py").write_text(textwrap.dedent(f"""
        import time
        rows = open({early_in!r}).read().splitlines()
        with open("features/early.csv", "w") as f:
            f.write("\\n".join(rows) + "\\n")
        time.sleep(1.0)
        rows += open({late_in!r}).read().splitlines()
        with open("features/late.csv", "w") as f:
            f.write("\\n".join(rows) + "\\n")
    """))
    category["features/early.csv"] = category["features/late.csv"] = "time-order"
    (work / "jobs" / "train.py").write_text(textwrap.dedent(f"""
        import pickle
        rows = open("features/late.csv").read().splitlines() + open({train_in!r}).read().splitlines()
        with open("models/loan_model/1/model.pkl", "wb") as f:
            pickle.dump({{"weights": [len(r) for r in rows], "training_rows": rows}}, f, protocol=4)
    """))
    category["models/loan_model/1/model.pkl"] = "model"
    (work / "jobs" / "deploy.sh").write_text("cp models/loan_model/1/model.pkl serving/loan_scoring/model.pkl\n")
    (work / "jobs" / "deploy.py").write_text(
        "import shutil\nshutil.copyfile('models/loan_model/1/model.pkl', 'serving/loan_scoring/model.pkl')\n")
    category["serving/loan_scoring/model.pkl"] = "deploy"
    last = person(persons - 1)
    (work / "jobs" / "report.py").write_text(textwrap.dedent(f"""
        import subprocess
        got = subprocess.run(["zcat", "archive/{last}.csv.gz"], capture_output=True, check=True).stdout
        with open("reports/{last}.txt", "wb") as f:
            f.write(b"report\\n" + got)
    """))
    category[f"reports/{last}.txt"] = "subprocess"
    return category


def stages(workload: str) -> list[tuple[str, list[str]]]:
    py = sys.executable
    if workload == "shell":
        first = [("ingest", ["sh", "jobs/ingest.sh"]), ("prepare", ["sh", "jobs/prepare.sh"])]
        deploy = ("deploy", ["sh", "jobs/deploy.sh"])
    else:
        first = [("ingest", [py, "jobs/ingest.py"]), ("prepare", [py, "jobs/prepare.py"])]
        deploy = ("deploy", [py, "jobs/deploy.py"])
    return [*first, ("features", [py, "jobs/features.py"]), ("train", [py, "jobs/train.py"]), deploy,
            ("report", [py, "jobs/report.py"])]


def holds(path: Path, mark: str) -> bool:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return mark.encode() in data or mark.lower().encode() in data


@dataclass
class Score:
    truth: int = 0
    found_certain: int = 0
    true_certain: int = 0
    found_all: int = 0
    true_all: int = 0
    misses: list[str] = field(default_factory=list)
    extras: list[str] = field(default_factory=list)

    def add(self, other: Score) -> None:
        for k in ("truth", "found_certain", "true_certain", "found_all", "true_all"):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        self.misses += other.misses
        self.extras += other.extras

    def figures(self) -> dict[str, float | None]:
        def ratio(a: int, b: int) -> float | None:
            return round(a / b, 3) if b else None
        return {"recall_certain": ratio(self.true_certain, self.truth),
                "precision_certain": ratio(self.true_certain, self.found_certain),
                "recall_all": ratio(self.true_all, self.truth), "precision_all": ratio(self.true_all, self.found_all)}


def cli(home: Path, work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # the provenance this benchmark imported, whatever the working directory of the job
    tree = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PROVENANCE_HOME": str(home), "COLUMNS": "200",
           "PYTHONPATH": os.pathsep.join(p for p in (tree, os.environ.get("PYTHONPATH", "")) if p)}
    return subprocess.run([sys.executable, "-m", "provenance.cli", *args], cwd=work, env=env, capture_output=True,
                          text=True, check=False, timeout=600)


def run_mode(root: Path, persons: int, mode: str, workload: str = "shell") -> dict[str, object]:
    """Run the workload under one capture mode; score every person's GDPR answer by category."""
    work, home = root / f"work-{mode}-{workload}", root / f"home-{mode}-{workload}"
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(home, ignore_errors=True)
    work.mkdir(parents=True)
    category = build(work, persons, workload)
    gaps: list[str] = []
    for name, argv in stages(workload):
        r = cli(home, work, "run", "--quiet", "--capture", mode, "--name", name, "--", *argv)
        if r.returncode != 0:
            raise SystemExit(f"{name} under {mode} failed: {r.stderr[-2000:]}")
    apps = json.loads(cli(home, work, "apps", "--json").stdout)["apps"]
    for app in apps:
        for gap in (app.get("props") or {}).get("capture_gaps") or []:
            gaps.append(f"{app.get('job')}: {gap.get('reason')}")
    rules = load_rules()
    artifact_of = {rel: rules.lookup((work / rel).resolve().as_uri()) for rel in category}
    by_artifact: dict[str, str] = {}
    for rel, ref in artifact_of.items():
        assert ref is not None, rel
        by_artifact[ref.uri] = category[rel]
    scores = {c: Score() for c in CATEGORIES}
    for i in range(persons):
        truth = {artifact_of[rel].uri for rel in category  # type: ignore[union-attr]
                 if holds(work / rel, marker(i))}
        r = cli(home, work, "gdpr", f"inbox/{person(i)}.csv", "--json", "--limit", "10000")
        if r.returncode != 0 and "no artifact at" not in r.stderr:
            raise SystemExit(f"gdpr {person(i)} under {mode}: {r.stderr[-2000:]}")
        # (a capture that never saw the file answers that it knows no such artifact: nothing found)
        answer = json.loads(r.stdout) if r.returncode == 0 else {"derived": [], "copies": [], "models": []}
        certain: set[str] = set()
        possible: set[str] = set()
        for key in ("derived", "copies", "models"):
            for item in answer[key]:
                (certain if item.get("certain", True) else possible).add(item["uri"])
        possible -= certain
        for uri in truth | certain | possible:
            c = by_artifact.get(uri)
            if c is None:  # an artifact the workload did not make as an output (an inbox file, a job script)
                c = "copy"
            s = scores[c]
            if uri in truth:
                s.truth += 1
                s.true_certain += uri in certain
                s.true_all += uri in certain or uri in possible
                if uri not in certain:
                    s.misses.append(f"{person(i)} → {uri} ({'possible' if uri in possible else 'not found'})")
            if uri in certain:
                s.found_certain += 1
            if uri in certain or uri in possible:
                s.found_all += 1
                if uri not in truth:
                    s.extras.append(f"{person(i)} → {uri} ({'certain' if uri in certain else 'possible'})")
    total = Score()
    for s in scores.values():
        total.add(s)
    return {"mode": mode, "workload": workload, "persons": persons, "gaps": sorted(set(gaps)),
            "categories": {c: {"truth": s.truth, **s.figures(), "misses": s.misses[:5], "extras": s.extras[:5]}
                           for c, s in scores.items()},
            "total": {"truth": total.truth, **total.figures()}}


def fanotify_permitted() -> bool:
    from provenance.connectors.fanotify import probe
    return probe() is None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.lineage_accuracy", description=__doc__.split("\n\n")[0])
    ap.add_argument("--persons", type=int, default=12, help="inbox files, one per person (at least 6)")
    ap.add_argument("--capture", nargs="+", default=["fanotify", "audit-hook"], choices=["fanotify", "audit-hook"])
    ap.add_argument("--workload", nargs="+", default=["shell", "python"], choices=["shell", "python"],
                    help="shell: copies, pipelines and the deploy by shell tools; python: each job one Python process")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)
    if args.persons < 6:
        ap.error("--persons must be at least 6 (three merged pairs)")
    modes = [m for m in args.capture if m != "fanotify" or fanotify_permitted()]
    skipped = [m for m in args.capture if m not in modes]
    results = []
    with tempfile.TemporaryDirectory(prefix="lineage-accuracy-") as tmp, \
            Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("workloads", total=len(modes) * len(args.workload))
        for workload in args.workload:
            for mode in modes:
                progress.update(task, description=f"{workload} workload under {mode}")
                results.append(run_mode(Path(tmp), args.persons, mode, workload))
                progress.advance(task)
    if args.json:
        print(json.dumps({"results": results, "skipped": skipped}, indent=2))
        return 0
    table = Table(title=f"GDPR accuracy against the data, {args.persons} persons (certain items | with possible)")
    for col in ("workload", "capture", "made by", "true items", "recall", "precision", "recall (all)",
                "precision (all)"):
        table.add_column(col, justify="left" if col in ("workload", "capture", "made by") else "right")

    def fmt(v: object) -> str:
        return "—" if v is None else f"{v:.3f}"
    for res in results:
        cats = res["categories"]
        assert isinstance(cats, dict)
        for c in CATEGORIES:
            f = cats[c]
            table.add_row(str(res["workload"]), str(res["mode"]), c, str(f["truth"]), fmt(f["recall_certain"]),
                          fmt(f["precision_certain"]), fmt(f["recall_all"]), fmt(f["precision_all"]))
        t = res["total"]
        assert isinstance(t, dict)
        table.add_row(str(res["workload"]), str(res["mode"]), "all", str(t["truth"]), fmt(t["recall_certain"]),
                      fmt(t["precision_certain"]), fmt(t["recall_all"]), fmt(t["precision_all"]), end_section=True)
    console.print(table)
    for res in results:
        for gap in res["gaps"]:  # type: ignore[attr-defined]
            console.print(f"[dim]{res['workload']}/{res['mode']} capture gap: {gap}[/]")
        for c, f in res["categories"].items():  # type: ignore[attr-defined]
            for line in f["misses"] + f["extras"]:
                console.print(f"[dim]{res['workload']}/{res['mode']} {c}: {line}[/]")
    for m in skipped:
        console.print(f"{m}: not permitted here (needs root), not measured")
    return 0


if __name__ == "__main__":
    sys.exit(main())
