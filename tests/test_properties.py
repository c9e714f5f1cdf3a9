"""Any permutation and any duplication of one event history produce the same graph."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provenance.bus.port import Record, raw_topic
from provenance.config import load_settings
from provenance.stack import open_stack
from tests.conftest import example_lines


def build(lines: list[str], batch_size: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as d:
        # the store is the subject here; the search index (a projection of it) is tested in test_search
        with open_stack(load_settings(home=Path(d), batch_size=batch_size, search={"type": "none"})) as s:
            s.bus.produce(raw_topic("canonical"), [Record(value=ln.encode()) for ln in lines])
            stats = s.processor.catch_up()
            assert stats.dead_lettered == 0, stats.errors
            return s.store.dump()


EXAMPLE = example_lines()
REFERENCE = build(EXAMPLE, 5000)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(order=st.permutations(EXAMPLE), dup=st.lists(st.integers(0, len(EXAMPLE) - 1), max_size=40),
       batch=st.integers(1, 50))
def test_example_history_any_order_any_duplicates(order: list[str], dup: list[int], batch: int) -> None:
    lines = list(order) + [EXAMPLE[i] for i in dup]
    assert build(lines, batch) == REFERENCE


# Random small histories: apps reading, writing, creating, deleting and renaming a few files,
# with explicit versions and commits mixed in; the order of arrival must not matter.
PROCS = ["1.1", "2.2", "3.3"]
FILES = ["/d/raw.csv", "/d/feat.parquet", "/Projects/p/Models/m/1/w.pkl", "/Projects/p/Models/m/2/w.pkl",
         "/lake/t/part-0.parquet", "/serving/m/model.pkl", "/tmp/scratch.bin"]


@st.composite
def histories(draw: st.DrawFn) -> list[str]:
    n_apps = draw(st.integers(1, 5))
    events: list[dict[str, Any]] = []
    for a in range(n_apps):
        app = f"app{a}"
        start = draw(st.integers(0, 100)) * 10
        events.append({"source": "t", "kind": "app", "op": "started", "ts": start, "app_id": app,
                       "user": draw(st.sampled_from(["u1", "u2"])), "attrs": {"name": f"job{a % 2}"}})
        for k in range(draw(st.integers(1, 6))):
            ts = start + 1 + k
            op = draw(st.sampled_from(["read", "read", "write", "create", "delete", "rename", "commit", "tag"]))
            f = draw(st.sampled_from(FILES))
            if op == "commit":
                events.append({"source": "t", "kind": "table_commit", "op": "commit", "ts": ts, "app_id": app,
                               "uri": "/lake/t", "attrs": {"version": draw(st.integers(0, 3))}})
            elif op == "rename":
                events.append({"source": "t", "kind": "file", "op": "rename", "ts": ts, "app_id": app, "uri": f,
                               "dst": draw(st.sampled_from(FILES))})
            elif op == "tag":
                events.append({"source": "t", "kind": "file", "op": "xattr_set", "ts": ts, "app_id": app,
                               "uri": f, "attrs": {"name": "user.prov.pii", "value": "true"}})
            elif draw(st.booleans()):  # as fanotify gives it: the process, its open time, the content's hash
                attrs: dict[str, Any] = {"proc": draw(st.sampled_from(PROCS)),
                                         "opened_ts": ts - draw(st.integers(0, 2))}
                if op != "delete" and draw(st.booleans()):
                    attrs["hash"] = draw(st.sampled_from(["blake3:aa", "blake3:bb"]))
                if op in ("read", "write") and draw(st.booleans()):
                    attrs["shared_with"] = [draw(st.sampled_from(PROCS))]
                    attrs["handed_on"] = draw(st.booleans())
                events.append({"source": "fanotify", "kind": "file", "op": op, "ts": ts, "app_id": app, "uri": f,
                               "attrs": attrs})
            else:
                events.append({"source": "t", "kind": "file", "op": op, "ts": ts, "app_id": app, "uri": f})
        if draw(st.booleans()):
            attrs = {"exit_code": 0}
            if draw(st.booleans()):  # the processes: a parent, and children passing data through pipes
                attrs["processes"] = [
                    {"proc": "1.1", "pid": 1, "ppid_proc": None, "exe": "sh", "start_ts": start, "end_ts": start + 50,
                     "pipes_in": [], "pipes_out": [9], "pipes_to_parent": []},
                    {"proc": "2.2", "pid": 2, "ppid_proc": "1.1", "exe": "sort", "start_ts": start + 1,
                     "end_ts": start + draw(st.integers(2, 40)), "pipes_in": [], "pipes_out": [7, 9],
                     "pipes_to_parent": []},
                    {"proc": "3.3", "pid": 3, "ppid_proc": "1.1", "exe": "gzip", "start_ts": start + 1,
                     "end_ts": start + draw(st.integers(2, 40)), "pipes_in": [7], "pipes_out": [8],
                     "pipes_to_parent": [8] if draw(st.booleans()) else []}]
            events.append({"source": "t", "kind": "app", "op": "finished", "ts": start + 50, "app_id": app,
                           "attrs": attrs})
    return [json.dumps(e) for e in events]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories(), data=st.data())
def test_random_histories_any_order_any_duplicates(history: list[str], data: st.DataObject) -> None:
    order = data.draw(st.permutations(history))
    dup = data.draw(st.lists(st.sampled_from(history), max_size=10))
    batch = data.draw(st.integers(1, 7))
    assert build(list(order) + dup, batch) == build(history, 10_000)
