"""The search index as a projection of the store: kept current by the processor, rebuilt when behind."""

from __future__ import annotations

import shutil
from pathlib import Path

import tantivy

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


def test_an_index_of_an_earlier_layout_is_rebuilt_from_the_store(stack: Stack) -> None:
    """The first layout indexed the stored JSON document as a term; an index written so is replaced."""
    ingest_lines(stack, example_lines())
    full = snapshot(stack)
    home = stack.settings.home
    stack.close()
    shutil.rmtree(home / "search")
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("id", stored=True, tokenizer_name="raw")
    sb.add_text_field("doc", stored=True, index_option="basic", tokenizer_name="raw")
    old = tantivy.Index(sb.build(), path=str(_made(home / "search")))
    writer = old.writer(15_000_000, 1)
    doc = tantivy.Document()
    doc.add_text("id", "artifact:file:///old")
    doc.add_text("doc", '{"id": "artifact:file:///old"}')
    writer.add_document(doc)
    writer.commit()
    del writer, old
    with open_stack(load_settings(home=home)) as again:
        again.processor.prepare()
        assert snapshot(again) == full


def _made(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


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
