"""GDPR answers scored against the data: captured jobs (shell tools and Python) whose outputs are read back to
see which persons' marker rows they hold (``bench/lineage_accuracy.py`` builds and scores the workload)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.lineage_accuracy import CATEGORIES, run_mode
from tests.test_capture_faults import needs_fanotify

PERSONS = 6


def categories(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return result["categories"]


@needs_fanotify
def test_fanotify_finds_every_holder_and_nothing_else_in_shell_jobs(tmp_path: Path) -> None:
    """Copies (cp, gzip > archive), pipelines (sort | gzip, cat a b | grep, tr < a > b), an output written a second
    before an input was read, the model, its deployed copy and data a Python job took from a child's pipe:
    recall and precision 1.0, every item certain."""
    result = run_mode(tmp_path, PERSONS, "fanotify", "shell")
    assert result["gaps"] == []
    for c in CATEGORIES:
        f = categories(result)[c]
        assert f["truth"] > 0, c
        assert (f["recall_certain"], f["precision_certain"]) == (1.0, 1.0), (c, f["misses"], f["extras"])
        assert f["precision_all"] == 1.0, (c, f["extras"])


@needs_fanotify
def test_fanotify_on_one_process_jobs_misses_nothing_and_says_what_it_cannot_split(tmp_path: Path) -> None:
    """The same steps, each job one Python process: every holder is found (certain), and the over-approximation
    of a process that read several inputs before writing several outputs shows as precision below 1 for those
    jobs only (the copies it made are exact by content, the model and deployment hold every input)."""
    result = run_mode(tmp_path, PERSONS, "fanotify", "python")
    cats = categories(result)
    for c in CATEGORIES:
        assert cats[c]["recall_certain"] == 1.0, (c, cats[c]["misses"])
    assert cats["copy"]["precision_certain"] < 1.0  # ingest.py copies every file in one process
    assert result["total"]["recall_certain"] == 1.0


def test_audit_hook_figures_are_what_one_flow_per_run_can_give(tmp_path: Path) -> None:
    """Under the audit hook a Python run is one flow: what it wrote is only possibly made from what it read, so
    the certain items are the exact copies by content alone, and every holder is among the possible items except
    the output of a program the hook cannot see (a child `zcat`), which its run reports as a capture gap."""
    result = run_mode(tmp_path, PERSONS, "audit-hook", "python")
    cats = categories(result)
    assert cats["copy"]["precision_certain"] == 1.0 and 0 < cats["copy"]["recall_certain"] < 1.0
    for c in ("copy", "pipeline", "time-order", "model", "deploy"):
        assert cats[c]["recall_all"] == 1.0, (c, cats[c]["misses"])
    for c in ("pipeline", "time-order", "model"):
        assert cats[c]["recall_certain"] == 0.0, c  # no process-level flows: possible only
    assert cats["subprocess"]["recall_all"] == 0.0
    assert any(g.startswith("report:") and "other program" in g for g in result["gaps"]), result["gaps"]


@pytest.mark.parametrize("workload", ["shell", "python"])
def test_the_workload_ground_truth_is_read_from_the_files(tmp_path: Path, workload: str) -> None:
    """The scorer's truth comes from the bytes: each inbox file's marker is in its copies and in what was made
    from it, and in nothing else (a check of the benchmark itself, with capture off)."""
    from bench.lineage_accuracy import build, holds, marker

    category = build(tmp_path, PERSONS, workload)
    assert set(category.values()) == set(CATEGORIES)
    # nothing is made until the jobs run: no output holds a marker yet (and the scorer does not guess)
    assert not any((tmp_path / rel).exists() and holds(tmp_path / rel, marker(0)) for rel in category)
