"""`provenance demo --replay`: the bundled loan-pipeline history (hand-written events), end to end."""

from __future__ import annotations

import tempfile
from pathlib import Path

from rich.console import Console
from rich.markdown import Markdown

from provenance.bus.port import Record, raw_topic
from provenance.config import load_settings
from provenance.graph.queries import LineageQueries
from provenance.processor.runner import processor_lock
from provenance.reports import audit_markdown, gdpr_markdown
from provenance.stack import open_stack

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "loan_pipeline.jsonl"
DEPLOYED_MODEL = "/Projects/loan/Deployments/loan_scoring"
RAW_WITH_PERSON = "/Projects/loan/Raw/applications_2026_02.csv"


def run_history_demo(directory: Path | None, console: Console) -> None:
    home = directory or Path(tempfile.mkdtemp(prefix="provenance-demo-"))
    settings = load_settings(home=home)
    lines = [ln for ln in EXAMPLE.read_bytes().splitlines() if ln.strip()]
    with open_stack(settings) as stack:
        stack.bus.produce(raw_topic("canonical"), [Record(value=ln) for ln in lines])
        with processor_lock(home):
            stats = stack.processor.catch_up()
        console.print(f"[bold]provenance demo[/bold] — state in {home}; {stats.events} events from "
                      f"{EXAMPLE.name} processed ({stats.dead_lettered} dead-lettered)\n", highlight=False)
        q = LineageQueries(stack.store, stack.rules)
        console.print(Markdown(audit_markdown(q.upstream(DEPLOYED_MODEL))))
        console.print(Markdown(gdpr_markdown(q.gdpr([RAW_WITH_PERSON]))))
    console.print(f"\nTry: provenance --home {home} footprint application_1772442000000_0006", highlight=False)
