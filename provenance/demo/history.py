"""`provenance demo --replay`: the bundled loan-pipeline history (hand-written events), end to end."""

from __future__ import annotations

import tempfile
from pathlib import Path

from rich.console import Console

from provenance.bus.port import Record, raw_topic
from provenance.config import Settings, load_settings
from provenance.demo import print_markdown
from provenance.graph.queries import LineageQueries
from provenance.processor.runner import processor_lock
from provenance.reports import audit_markdown, gdpr_markdown
from provenance.stack import open_stack

EXAMPLE = Path(__file__).resolve().parent / "loan_pipeline.jsonl"
DEPLOYED_MODEL = "/Projects/loan/Deployments/loan_scoring"
RAW_WITH_PERSON = "/Projects/loan/Raw/applications_2026_02.csv"


def run_history_demo(settings: Settings | None, console: Console) -> None:
    """Replay the history into ``settings``' home (default: a new temporary one) and print two reports."""
    settings = settings or load_settings(home=Path(tempfile.mkdtemp(prefix="provenance-demo-")))
    home = settings.home
    lines = [ln for ln in EXAMPLE.read_bytes().splitlines() if ln.strip()]
    with open_stack(settings) as stack:
        stack.bus.produce(raw_topic("canonical"), [Record(value=ln) for ln in lines])
        with processor_lock(home):
            stats = stack.processor.catch_up()
        console.print(f"[bold]provenance demo[/bold] — state in {home}; {stats.events} events from "
                      f"{EXAMPLE.name} processed ({stats.dead_lettered} dead-lettered)\n", highlight=False)
        q = LineageQueries(stack.store, stack.rules)
        print_markdown(console, audit_markdown(q.upstream(DEPLOYED_MODEL)))
        print_markdown(console, gdpr_markdown(q.gdpr([RAW_WITH_PERSON])))
    console.print(f"\nTry: provenance --home {home} footprint application_1772442000000_0006", highlight=False)
