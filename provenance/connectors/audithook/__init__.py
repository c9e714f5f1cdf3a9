"""Audit-hook capture: no root needed, Python jobs only (see `sitecustomize` for what it records).

`prepare` makes the spool directory and the environment that injects the hook; `collect` reads the
spool back as raw records, and lists the processes whose spool was cut short (capture gaps).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

HOOK_DIR = Path(__file__).resolve().parent


@dataclass
class Collected:
    lines: list[bytes] = field(default_factory=list)
    gaps: list[dict[str, object]] = field(default_factory=list)
    processes: int = 0
    delta_tables: set[str] = field(default_factory=set)  # Delta tables the job wrote or read


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


def collect(spool: Path) -> Collected:
    out = Collected()
    if not spool.is_dir():
        return out
    for path in sorted(spool.glob("*.jsonl")):
        out.processes += 1
        ended = False
        for line in path.read_bytes().splitlines():
            if not line.strip():
                continue
            if line.startswith(b'{"_end"'):  # the hook writes its end marker in exactly this form
                ended = bool(json.loads(line).get("_end"))
                continue
            if line.startswith(b'{"_delta_table"'):
                out.delta_tables.add(str(json.loads(line)["_delta_table"]))
                continue
            out.lines.append(line)  # a torn last line goes on too: the processor dead-letters it
        if not ended:
            out.gaps.append({"pid": int(path.stem), "reason": "process ended without flushing its capture "
                             "(killed, or os._exit): its last file operations may be missing"})
    return out
