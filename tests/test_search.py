"""The search index as a projection of the store: kept current by the processor, rebuilt when behind."""

from __future__ import annotations

import shutil

from provenance.config import load_settings
from provenance.search.port import SearchQuery
from provenance.stack import Stack, open_stack
from tests.conftest import example_lines, ingest_lines


def snapshot(stack: Stack) -> list[dict[str, object]]:
    assert stack.search is not None
    return sorted((h for h in stack.search.search(SearchQuery(limit=1000, sort="recent")).hits),
                  key=lambda h: str(h["id"]))


def test_the_processor_keeps_the_index_current_and_a_lost_index_is_rebuilt(stack: Stack) -> None:
    lines = example_lines()
    ingest_lines(stack, lines[:40])
    assert stack.search is not None
    partial = stack.search.count()
    ingest_lines(stack, lines[40:])
    full = snapshot(stack)
    assert stack.search.count() > partial and len(full) == stack.search.count()
    kinds = {h["kind"] for h in full}
    assert kinds == {"artifact", "app", "user"}
    home = stack.settings.home
    stack.close()
    shutil.rmtree(home / "search")  # lost, or a crash between the store and the index
    with open_stack(load_settings(home=home)) as again:
        again.processor.prepare()
        assert snapshot(again) == full


def test_replaying_the_same_history_changes_nothing(stack: Stack) -> None:
    lines = example_lines()
    ingest_lines(stack, lines)
    before = snapshot(stack)
    ingest_lines(stack, lines)  # duplicates: the store and the index stay the same
    assert snapshot(stack) == before


def test_search_can_be_off(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings(home=tmp_path, search={"type": "none"})
    with open_stack(settings) as stack:
        ingest_lines(stack, example_lines()[:10])
        assert stack.search is None and not (tmp_path / "search").exists()
