"""``provenance demo``: a real ML pipeline, built in a directory and run stage by stage under
``provenance run``. No event is written by hand: everything the reports show was captured.

The pipeline (a loan-approval model, as in the Hopsworks paper's story): raw applications with
personal data arrive as CSV files; a shell stage ingests them; feature engineering writes a Delta
feature group (one commit per file); a training dataset is cut from the feature group at a version; a
scikit-learn model is trained; a bias evaluation reads the model and the test data and writes a
fairness report; a shell stage deploys the model by copying it into a serving directory. Then new
data arrives, the code is tuned and committed, and the pipeline runs again to model v2.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.markdown import Markdown
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from provenance.config import Settings, load_settings
from provenance.connectors import fanotify
from provenance.connectors.launcher import Launcher, RunResult
from provenance.errors import ProvenanceError
from provenance.graph.queries import LineageQueries
from provenance.graph.repro import compare_runs
from provenance.processor.runner import processor_lock
from provenance.reports import audit_markdown, compare_markdown, footprint_markdown, gdpr_markdown, impact_markdown
from provenance.stack import open_stack

STAGES = Path(__file__).resolve().parent / "stages"
PERSON = "Ada Lovelace"  # the data subject of the GDPR request
RAW_WITH_PERSON = "data/raw/applications_2026_02.csv"
FEATURE_GROUP = "featurestore/loan_features"
SERVING = "serving/loan_scoring"
NEEDS = ("pandas", "sklearn", "deltalake", "pyarrow")

_FIRST = ["Alex", "Maria", "John", "Fatima", "Wei", "Olga", "Luca", "Amara", "Noah", "Ines", "Kofi", "Yuki",
          "Sven", "Priya", "Diego", "Hana", "Omar", "Lea", "Ravi", "Zoe"]
_LAST = ["Smith", "Garcia", "Chen", "Okafor", "Nowak", "Rossi", "Haddad", "Kim", "Silva", "Berg", "Khan", "Novak",
         "Meyer", "Dubois", "Sato", "Mensah", "Ivanova", "Costa", "Patel", "Larsen"]


def print_markdown(console: Console, text: str) -> None:
    """A report: rendered on a terminal; its Markdown text when piped (copyable, no padding, nothing cut)."""
    if console.is_terminal:
        console.print(Markdown(text))
        console.print()
    else:
        console.file.write(text.rstrip("\n") + "\n\n")


class DemoError(ProvenanceError):
    """A stage of the demo pipeline failed, or the demo cannot run here."""


def applications(month: int, rows: int, seed: int, person: str | None = None) -> str:
    """Loan applications of one month as CSV: name, gender, age, income, loan amount, approved."""
    rng = random.Random(seed)
    lines = ["name,gender,age,income,loan_amount,approved"]
    for i in range(rows):
        name = person if person and i == rows // 2 else f"{rng.choice(_FIRST)} {rng.choice(_LAST)} {month}{i:04d}"
        gender = "F" if (person and name == person) else rng.choice("FM")
        age = rng.randint(19, 75)
        income = round(rng.lognormvariate(10.6, 0.45), 2)
        amount = round(rng.uniform(2_000, 60_000), 2)
        score = 1.6 * (income / 40_000) - amount / 30_000 + (age - 40) / 80 + rng.gauss(0, 0.5)
        lines.append(f"{name},{gender},{age},{income},{amount},{int(score > 0.4)}")
    return "\n".join(lines) + "\n"


@dataclass
class Stage:
    name: str
    argv: list[str]


@dataclass
class DemoRun:
    directory: Path
    home: Path
    capture: str
    runs: dict[str, list[RunResult]] = field(default_factory=dict)


def _git(directory: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(directory), "-c", "user.name=Demo Engineer", "-c", "user.email=demo@example.org",
                    *args], check=True, capture_output=True)


def _pipeline(python: str, version: int, raw_files: Sequence[str], shell: bool) -> list[Stage]:
    td, model = f"training_datasets/loan_td/{version}", f"models/loan_model/{version}"
    deploy = (["sh", "pipeline/deploy.sh", model, SERVING] if shell else
              [python, "-c", "import os, shutil, sys; os.makedirs(sys.argv[2], exist_ok=True); "
               "shutil.copyfile(sys.argv[1] + '/model.pkl', sys.argv[2] + '/model.pkl')", model, SERVING])
    return [
        Stage("ingest", ["sh", "pipeline/ingest.sh"] if shell else
              [python, "-c", "import glob, os, shutil\nos.makedirs('data/raw', exist_ok=True)\n"
               "for f in glob.glob('inbox/*.csv'):\n    shutil.move(f, 'data/raw/' + os.path.basename(f))"]),
        Stage("features", [python, "pipeline/features.py", *raw_files]),
        Stage("training-dataset", [python, "pipeline/training_dataset.py", FEATURE_GROUP, str(version), td]),
        Stage("train", [python, "pipeline/train.py", td, model]),
        Stage("bias-evaluation", [python, "pipeline/evaluate_bias.py", model, td,
                                  f"reports/fairness_loan_model_{version}.json"]),
        Stage("deploy", deploy),
    ]


def check_requirements() -> None:
    import importlib.util

    missing = [m for m in NEEDS if importlib.util.find_spec(m) is None]
    if missing:
        raise DemoError(f"the demo pipeline needs {', '.join(missing)}: pip install 'provenance[demo]'")


def build_and_run(directory: Path, settings: Settings, console: Console, capture: str = "auto") -> DemoRun:
    """Lay the pipeline out in ``directory`` (new or empty) and run every stage; returns the runs."""
    check_requirements()
    if directory.exists() and any(directory.iterdir()):
        raise DemoError(f"{directory} is not empty: give the demo a new or empty directory (--dir)")
    directory.mkdir(parents=True, exist_ok=True)
    directory = directory.resolve()
    (directory / "pipeline").mkdir()
    for stage in STAGES.iterdir():
        if stage.suffix in (".py", ".sh"):
            shutil.copyfile(stage, directory / "pipeline" / stage.name)
    (directory / ".gitignore").write_text(".provenance/\n")
    use_git = shutil.which("git") is not None
    if use_git:
        _git(directory, "init", "-q")
        _git(directory, "add", "pipeline", ".gitignore")
        _git(directory, "commit", "-qm", "loan pipeline")
    inbox = directory / "inbox"
    inbox.mkdir()
    (inbox / "applications_2026_01.csv").write_text(applications(1, 400, seed=1))
    (inbox / "applications_2026_02.csv").write_text(applications(2, 400, seed=2, person=PERSON))

    mode = capture if capture != "auto" else ("fanotify" if fanotify.probe() is None else "audit-hook")
    shell = mode == "fanotify"  # only fanotify sees what non-Python programs do
    python = sys.executable
    first = _pipeline(python, 1, ["data/raw/applications_2026_01.csv", RAW_WITH_PERSON], shell)
    second = _pipeline(python, 2, ["data/raw/applications_2026_03.csv"], shell)
    result = DemoRun(directory, settings.home, mode)
    with open_stack(settings) as stack:
        launcher = Launcher(stack.bus, settings.home, echo=False, noise=settings.capture.noise,
                            ignore=settings.capture.ignore)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=True) as bar:
            task = bar.add_task("pipeline", total=len(first) + len(second) + 1)

            def run(stages: list[Stage]) -> None:
                for stage in stages:
                    bar.update(task, description=f"stage [bold]{stage.name}[/bold]")
                    r = launcher.run(stage.argv, name=stage.name, project="loan", capture=mode, cwd=directory)
                    if r.exit_code != 0:
                        tail = r.log_path.read_text(errors="replace")[-2000:]
                        raise DemoError(f"stage {stage.name} failed (exit {r.exit_code}); its log:\n{tail}")
                    result.runs.setdefault(stage.name, []).append(r)
                    console.print(f"  [green]✓[/green] {stage.name:<17} {r.app_id}  "
                                  f"{r.events:>4} file events ({r.capture})", highlight=False)
                    bar.advance(task)

            run(first)
            # a month later: new applications arrive, and the model's regularisation is tuned
            (inbox / "applications_2026_03.csv").write_text(applications(3, 300, seed=3))
            train = directory / "pipeline" / "train.py"
            train.write_text(train.read_text().replace("C = 1.0", "C = 0.5"))
            if use_git:
                _git(directory, "commit", "-qam", "train: stronger regularisation")
            console.print("  [dim]new data arrived (2026-03) and train.py was tuned[/dim]", highlight=False)
            run(second)
            bar.update(task, description="processing the captured events")
            with processor_lock(settings.home):
                stack.processor.catch_up()
            bar.advance(task)
    return result


def report(run: DemoRun, settings: Settings, console: Console) -> None:
    d = run.directory
    with open_stack(settings) as stack:
        q = LineageQueries(stack.store, stack.rules)
        train_runs = [r.app_id for r in run.runs["train"]]
        sections = [
            audit_markdown(q.upstream(str(d / SERVING))),
            gdpr_markdown(q.gdpr([str(d / RAW_WITH_PERSON)])),
            footprint_markdown(q.footprint(train_runs[-1])),
            impact_markdown(q.impact(artifact=f"{d / FEATURE_GROUP}@1"), f"feature group `{FEATURE_GROUP}` version 1"),
            compare_markdown(compare_runs(q, train_runs[0], train_runs[-1])),
        ]
    for text in sections:
        print_markdown(console, text)


def run_pipeline_demo(directory: Path | None, console: Console, capture: str = "auto",
                      settings_for: Callable[[Path], Settings] | None = None) -> DemoRun:
    """``settings_for(default_home)`` gives the settings (default: DIR/.provenance as home)."""
    directory = directory or Path(tempfile.mkdtemp(prefix="provenance-demo-"))
    default_home = directory.resolve() / ".provenance"
    settings = settings_for(default_home) if settings_for else load_settings(home=default_home)
    console.print(f"[bold]provenance demo[/bold] — a loan-approval pipeline in {directory}, every stage run "
                  f"under `provenance run`; state in {settings.home}", highlight=False)
    run = build_and_run(directory, settings, console, capture)
    if run.capture != "fanotify":
        console.print("[yellow]fanotify is not permitted here (run as root for it): the shell stages were "
                      "replaced by Python ones, which the audit hook can see[/yellow]", highlight=False)
    report(run, settings, console)
    console.print(f"Try: provenance --home {settings.home} apps   ·   provenance --home {settings.home} audit "
                  f"{run.directory / SERVING} --format md", highlight=False)
    return run
