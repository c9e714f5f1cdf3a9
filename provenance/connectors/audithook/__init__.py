"""Audit-hook capture: no root needed, Python jobs only (see `sitecustomize` for what it records).

`prepare` makes the spool directory and the environment that injects the hook; `collect` reads the
spool back as raw records, with the processes that wrote it (their ``_proc`` records), the programs
they started that the hook cannot see, and the capture gaps: processes whose spool was cut short,
and operations whose path could not be named.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from provenance.connectors.processes import ProcessRecord, clip_argv

HOOK_DIR = Path(__file__).resolve().parent
GAP_DETAILS = 100  # gaps the hook noted, listed one by one; past that, counted


@dataclass
class Collected:
    lines: list[bytes] = field(default_factory=list)
    gaps: list[dict[str, object]] = field(default_factory=list)
    processes: int = 0
    delta_tables: set[str] = field(default_factory=set)  # Delta tables the job wrote or read
    process_records: list[ProcessRecord] = field(default_factory=list)
    unseen: list[str] = field(default_factory=list)  # programs started by the job that the hook cannot see


def prepare(spool: Path, app_id: str, user: str | None, env: dict[str, str], *, files: bool = True,
            noise: list[str] | tuple[str, ...] = ()) -> dict[str, str]:
    """The job's environment with the hook injected. ``files=False`` when another capture (fanotify) sees
    the file I/O: the hook then only instruments what needs the job's runtime (Delta commit metadata
    and the table versions read)."""
    spool.mkdir(parents=True, exist_ok=True)
    out = dict(env)
    out["PROVENANCE_HOOK_FILES"] = "1" if files else "0"
    out["PROVENANCE_NOISE"] = os.pathsep.join(noise)
    out["PYTHONPATH"] = os.pathsep.join([str(HOOK_DIR), *(p for p in [env.get("PYTHONPATH", "")] if p)])
    out["PROVENANCE_APP_ID"] = app_id
    out["PROVENANCE_SPOOL"] = str(spool)
    if user:
        out["PROVENANCE_USER"] = user
    return out


def unseen_program(argv: Sequence[str], env: Mapping[str, str]) -> str | None:
    """None when the job's command is a Python that will load the hook, else the program's name."""
    spec = importlib.util.spec_from_file_location("_provenance_programs", HOOK_DIR / "_provenance_programs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    check = cast(Callable[..., "str | None"], module.unseen_program)
    return check(None, list(argv), dict(env), str(HOOK_DIR))


def _record(info: dict[str, Any], pid: int) -> ProcessRecord:
    argv = info.get("argv")
    return ProcessRecord(proc=str(info.get("proc") or pid), pid=int(info.get("pid") or pid),
                         ppid_proc=info["parent"] if isinstance(info.get("parent"), str) else None,
                         exe=info["exe"] if isinstance(info.get("exe"), str) else None,
                         argv=clip_argv(str(a) for a in argv) if isinstance(argv, list) else None,
                         start_ts=info["start_ts"] if isinstance(info.get("start_ts"), int) else None)


def collect(spool: Path) -> Collected:
    """Read the spool back. Its lines come from the job's processes, so each is checked before use:
    a line that does not parse goes on as it is (the processor dead-letters it)."""
    out = Collected()
    if not spool.is_dir():
        return out
    procs: dict[str, ProcessRecord] = {}
    unseen: set[str] = set()
    noted = 0
    for path in sorted(spool.glob("*.jsonl")):
        ended = False
        current: ProcessRecord | None = None
        pid = int(path.stem) if path.stem.isdigit() else -1
        for line in path.read_bytes().splitlines():
            if not line.strip():
                continue
            if line.startswith(b'{"_'):  # the hook's own records, always written with their key first
                try:
                    note = json.loads(line)
                except ValueError:
                    out.lines.append(line)
                    ended = False
                    continue
                if "_end" in note:
                    ended = bool(note.get("_end"))
                    if current is not None and isinstance(note.get("end_ts"), int):
                        current.end_ts = note["end_ts"]
                elif "_proc" in note and isinstance(note["_proc"], dict):
                    ended = False
                    rec = _record(note["_proc"], pid)
                    known = procs.get(rec.proc)
                    if known is None:
                        procs[rec.proc] = current = rec
                    else:  # the same process in a new program image (exec): it runs that program now
                        current = known
                        known.exe, known.argv = rec.exe or known.exe, rec.argv or known.argv
                elif "_delta_table" in note:
                    out.delta_tables.add(str(note["_delta_table"]))
                elif "_unseen" in note:
                    unseen.add(str(note["_unseen"]))
                elif "_gap" in note and isinstance(note["_gap"], dict):
                    noted += 1
                    if noted <= GAP_DETAILS:
                        out.gaps.append({k: v for k, v in note["_gap"].items() if isinstance(k, str)})
                continue
            ended = False
            if current is not None:
                current.file_events += 1
            out.lines.append(line)  # a torn last line goes on too: the processor dead-letters it
        if not ended:
            out.gaps.append({"pid": pid, "reason": "process ended without flushing its capture "
                             "(killed, or os._exit): its last file operations may be missing"})
    if noted > GAP_DETAILS:
        out.gaps.append({"reason": f"{noted - GAP_DETAILS} more operations whose path could not be named",
                         "kind": "unresolved_path"})
    out.process_records = list(procs.values())
    out.processes = len(procs) or len(list(spool.glob("*.jsonl")))
    out.unseen = sorted(unseen)
    return out
