"""Processes of one run: an identity that survives pid reuse, and the bounded list the app carries.

A pid names a process only while it lives; the kernel hands it out again afterwards. Within a run,
a process is named by its *proc key* ``"<pid>.<starttime>"``, where starttime is field 22 of
``/proc/<pid>/stat`` (clock ticks after boot at which the process started): two processes that
share a pid never share a start time. The key is read once per process and kept; a process that
is already gone when it is first seen is keyed ``"<pid>"`` for the whole run.

The app's ``finished`` (or ``failed``/``killed``) event carries ``processes``: at most
:data:`PROCESS_LIMIT` records, those that touched files first, each
``{proc, pid, ppid_proc, exe, argv, start_ts, end_ts}``:

- ``proc`` (str): the proc key, the same string as ``attrs.proc`` on the process's file events;
- ``pid`` (int);
- ``ppid_proc`` (str | None): the parent's proc key when the parent is a listed process of the run,
  else null (the launcher itself, or a parent the capture did not see);
- ``exe`` (str | None): basename of the program (``/proc/<pid>/exe``, or of the file it exec'd, or
  of ``argv[0]``);
- ``argv`` (list[str] | None): the first :data:`ARGV_LIMIT` arguments, each cut to
  :data:`ARG_LIMIT` characters; null when the process was gone before it could be read;
- ``start_ts``, ``end_ts`` (int | None): ms since the epoch, null when unknown;
- ``pipes_in``, ``pipes_out`` (list[int]): the pipes (by inode) the process was handed, for reading and for
  writing, when it started its program (read by :mod:`exec_gate` while the exec waits): how a shell pipeline
  passes data from one process to the next (``sort in.csv | gzip > out.gz``: sort writes the pipe gzip
  reads). Without the gate, read when the watcher handles the exec, and empty for a process gone by then;
- ``pipes_to_parent`` (list[int]): of ``pipes_out``, those whose read end the parent held when the process
  started its program (``subprocess.run(..., capture_output=True)``, a shell's ``$(cmd)``): the parent reads
  them, unless another process of the run does;
- ``pipes_from_parent`` (list[int]): of ``pipes_in``, those whose write end the parent held when the process
  started its program (``Popen(stdin=PIPE).communicate(data)``, ``tar czf`` feeding its gzip): the parent
  writes them, unless another process of the run does.

``processes_omitted`` (int) says how many were left out.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

from provenance.connectors.exec_gate import Descriptors

PROCESS_LIMIT = 2_000
ARGV_LIMIT = 20
ARG_LIMIT = 200


def starttime(pid: int | str) -> int | None:
    """Field 22 of ``/proc/<pid>/stat``; None when the process is gone (``pid`` may be ``"self"``)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        # the command name (field 2) may hold spaces and parentheses: fields are counted after the last ')'
        return int(stat.rsplit(b")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def state_of(pid: int) -> tuple[str, int] | None:
    """(state letter, starttime) of a process (field 3 and 22 of its stat); None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return fields[0].decode("ascii", "replace"), int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def proc_key(pid: int, start: int | None) -> str:
    return f"{pid}.{start}" if start is not None else str(pid)


def exe_of(pid: int) -> str | None:
    try:
        target = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None
    return os.path.basename(target.removesuffix(" (deleted)")) or None


def argv_of(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read(ARGV_LIMIT * (ARG_LIMIT * 4 + 1))
    except OSError:
        return None
    if not raw:  # a zombie, or a kernel thread
        return None
    parts = raw.split(b"\0")
    if parts and parts[-1] == b"":
        parts.pop()
    return clip_argv(os.fsdecode(p) for p in parts)


def clip_argv(argv: Iterable[str]) -> list[str]:
    out: list[str] = []
    for arg in argv:
        if len(out) == ARGV_LIMIT:
            break
        out.append(arg[:ARG_LIMIT])
    return out


@dataclass
class ProcessRecord:
    proc: str
    pid: int
    ppid_proc: str | None = None
    exe: str | None = None
    argv: list[str] | None = None
    start_ts: int | None = None
    end_ts: int | None = None
    pipes_in: list[int] = field(default_factory=list)
    pipes_out: list[int] = field(default_factory=list)
    pipes_to_parent: list[int] = field(default_factory=list)
    pipes_from_parent: list[int] = field(default_factory=list)
    file_events: int = 0  # not published: orders the list when it must be cut
    #: not published: the files it held open when it started its program, by (dev, inode)
    files_in: set[tuple[int, int]] = field(default_factory=set)
    files_out: set[tuple[int, int]] = field(default_factory=set)
    #: not published: the path each of those files had then (an inode a deleted file left is soon another's)
    paths: dict[tuple[int, int], str] = field(default_factory=dict)

    def note(self, held: Descriptors, to_parent: Iterable[int] = (), from_parent: Iterable[int] = ()) -> None:
        """Add descriptors the process was seen holding (when it was found, when it exec'd)."""
        self.pipes_to_parent = sorted(set(self.pipes_to_parent) | set(to_parent))
        self.pipes_from_parent = sorted(set(self.pipes_from_parent) | set(from_parent))
        self.pipes_in = sorted(set(self.pipes_in) | held.pipes_in)
        self.pipes_out = sorted(set(self.pipes_out) | held.pipes_out)
        self.files_in |= held.files_in
        self.files_out |= held.files_out
        self.paths.update(held.paths)

    def public(self) -> dict[str, object]:
        out = asdict(self)
        for internal in ("file_events", "files_in", "files_out", "paths"):
            del out[internal]
        return out


def bounded(records: Sequence[ProcessRecord], limit: int = PROCESS_LIMIT) -> tuple[list[dict[str, object]], int]:
    """The records to publish, and how many were left out. The processes that touched files come
    first (they are what process-level lineage is made of), then by start time."""
    listed = {r.proc for r in records}
    ordered = sorted(records, key=lambda r: (r.file_events == 0, r.start_ts if r.start_ts is not None else 0, r.pid))
    kept = ordered[:limit]
    out = []
    for r in kept:
        item = r.public()
        if item["ppid_proc"] not in listed:
            item["ppid_proc"] = None
        out.append(item)
    return out, len(ordered) - len(kept)
