"""fanotify capture: every process of a launched job, in any language (Linux, needs CAP_SYS_ADMIN).

The watcher puts a filesystem mark on each real filesystem of the machine, in the kernel's
"directory file handle + name" reporting mode (with the target's own handle, Linux 5.17+), so that
it is told about opens, closes after reading or writing, creates, deletes, renames and attribute
changes (extended attributes among them), each with the pid of the process that did it. A pid
belongs to the job when the kernel's proc connector saw it forked, directly or not, from the
launcher after the watcher started (the job is the launcher's only child while it runs); where the
proc connector is not available, the parent chain in ``/proc`` is walked instead (short-lived
children may then be missed, and the app says so).

The watcher runs in a thread of the launcher and never blocks the job's file I/O: its group only
notifies, the queue is unlimited, and the thread drains it as events come. Only a job's ``execve`` waits,
for the moment :mod:`exec_gate` (a process of its own) takes to read what the new program was handed
(``cmd > out``, ``a | b``); at the end, a read or write through a handed descriptor is joined to the
process that used it (``attrs.shared_with``), and the pipes go on the process list. A queue
overflow is counted and reported on the app as a capture gap. Noise — interpreters, installed
packages, shared libraries, caches, ``/proc``, ``/sys``, ``/dev`` — is dropped by path prefix; the
list is configurable. Directory handles are turned into paths by :mod:`handles`, which keeps each
path as it was at the event even when the watcher reads the queue after the job renamed or removed
the directory; a name that still cannot be placed is a capture gap naming the operation and the
file name (``kind: "unresolved_path"``), never a silent loss.

fanotify events carry no time, so each is bounded: ``ts`` is when the watcher read it (at or after it
happened; never before an event read earlier: times are kept monotonic), and the earliest it can have
happened is the last time the watcher found the queue empty before reading it (it looks at least every
:data:`IDLE_POLL_MS`). A read's or a write's ``opened_ts`` is that earliest time of its open, and its
``ts`` the latest time of its close, so an output whose ``ts`` is before an input's ``opened_ts`` was
surely written before the input was read, whatever order the kernel queued them in (it folds an open
and a close of the same file by the same process into one event while both wait).

File events (``kind: "file"``, ``source: "fanotify"``) carry in ``attrs``:

- ``pid`` (int) and ``proc`` (str): the process, as :mod:`processes` names it (``"<pid>.<starttime>"``);
- ``opened_ts`` (int, ms) on ``read``, ``write`` and ``create``: when the process opened the file (its
  first open since it last closed it; for a create, when it made it), at the earliest; ``ts`` is when
  it closed it, at the latest: for a write, when the write ended;
- ``fingerprint`` (``{"size", "mtime_ns", "inode", "dev"}``) on ``read``, ``write``, ``create`` and
  ``rename`` (of the target), from a ``stat`` as the watcher handled the event; absent if the file
  was gone by then. The launcher adds ``hash`` or ``hash_skipped`` (see :mod:`fingerprint`);
- ``via_directory_rename: true`` on a ``rename`` of a file that moved because its directory did
  (one per file beneath: those the run touched and those beneath the new path when the watcher
  handled the rename; bounded, else a gap). A directory's own rename is not an event (an empty
  directory holds no data);
- ``shared_with`` (list[str]) on ``read``, ``write`` and ``create``: the other processes of the run that held
  the file open, for reading or for writing (a create: for writing), when they started their program (by device
  and inode, within the process's life): ``cat in.csv > out.csv`` in a shell is made and written by cat,
  whoever created it and closed it last;
- ``handed_on: true`` with ``shared_with``, when the process named is an ancestor of them all: it opened the
  file for them (the shell's redirection) and its own access is not taken as a use of the data;
- ``name``/``value`` on ``xattr_set``/``xattr_remove``, as before.

A process's repeated reads of a file are one ``read`` until the file is written, created, deleted
or renamed (by anyone); each process that read a file has its own ``read``. A file opened for writing
but not changed (``open(f, "r+").read()``, SQLite's read-write open of a database it only queries: the
kernel reports a close after writing for any descriptor opened for writing) is a ``read``: its
modification and change times, at its close, are older than its open (by :data:`UNCHANGED_SLACK_MS`).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import select
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from provenance.connectors import exec_gate, processes
from provenance.connectors.exec_gate import Descriptors, descriptors_of
from provenance.connectors.fingerprint import fingerprint_of
from provenance.connectors.handles import DirectoryHandles
from provenance.connectors.proc_connector import (  # noqa: F401 - part of this module's surface
    _CNMSG,
    _NLMSG,
    PROC_EVENT_EXEC,
    PROC_EVENT_EXIT,
    PROC_EVENT_FORK,
    open_proc_connector,
    proc_events,
    timed_proc_events,
)
from provenance.connectors.processes import ProcessRecord

# <linux/fanotify.h>
FAN_CLOEXEC, FAN_NONBLOCK = 0x1, 0x2
FAN_CLASS_NOTIF = 0x0
FAN_UNLIMITED_QUEUE = 0x10
FAN_REPORT_FID, FAN_REPORT_DIR_FID, FAN_REPORT_NAME, FAN_REPORT_TARGET_FID = 0x200, 0x400, 0x800, 0x1000
FAN_REPORT_DFID_NAME = FAN_REPORT_DIR_FID | FAN_REPORT_NAME
FAN_REPORT_DFID_NAME_TARGET = FAN_REPORT_DFID_NAME | FAN_REPORT_FID | FAN_REPORT_TARGET_FID
FAN_OPEN, FAN_ATTRIB, FAN_CLOSE_WRITE, FAN_CLOSE_NOWRITE = 0x20, 0x4, 0x8, 0x10
FAN_MOVED_FROM, FAN_MOVED_TO, FAN_CREATE, FAN_DELETE = 0x40, 0x80, 0x100, 0x200
FAN_OPEN_EXEC = 0x1000
FAN_Q_OVERFLOW = 0x4000
FAN_RENAME = 0x10000000
FAN_ONDIR = 0x40000000
FAN_MARK_ADD, FAN_MARK_FILESYSTEM = 0x1, 0x100
FAN_NOFD = -1
INFO_FID, INFO_DFID_NAME, INFO_OLD_DFID_NAME, INFO_NEW_DFID_NAME = 1, 2, 10, 12
O_PATH = getattr(os, "O_PATH", 0o10000000)

# opens are subscribed to so that a read's or a write's open time is known; FAN_OPEN_EXEC names
# the program a process runs even when it is gone before /proc could be read
MASK = (FAN_ATTRIB | FAN_CLOSE_WRITE | FAN_CLOSE_NOWRITE | FAN_CREATE | FAN_DELETE | FAN_RENAME | FAN_OPEN
        | FAN_OPEN_EXEC)
MARK_MASK = MASK | FAN_ONDIR  # directory creates and renames keep the handle table true
_META = struct.Struct("=IBBHQii")  # event_len, vers, reserved, metadata_len, mask, fd, pid
_INFO = struct.Struct("=BBH")  # info_type, pad, len
_HANDLE = struct.Struct("=8sIi")  # fsid, handle_bytes, handle_type
DIRECTORY_RENAME_FILES = 10_000
COALESCE_S = 0.002
IDLE_POLL_MS = 50  # how often an idle watcher looks at the queue, so that an event's earliest time stays close
GAP_DETAILS = 100  # unresolved names listed one by one; past that, counted
GATE_START_S = 10.0
#: how far a file event's times and a process's life may disagree (the event's time is when the watcher read
#: it; the process's, the kernel's) for the process to be taken as one that used the file through a descriptor
HANDED_SLACK_MS = 2_000
#: a file closed after writing whose modification and change times are older than its open by this much was not
#: written (it was opened for writing and only read): more than the coarse clock the kernel stamps files with lags
UNCHANGED_SLACK_MS = 20
_SHARED_OBJECT = re.compile(r"\.so(\.[\d.]+)?$")

# filesystems with nothing a job's lineage is made of
PSEUDO_FS = frozenset({
    "proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "mqueue", "debugfs", "tracefs", "securityfs",
    "pstore", "bpf", "autofs", "fusectl", "configfs", "hugetlbfs", "binfmt_misc", "rpc_pipefs", "nsfs",
    "efivarfs", "selinuxfs", "ramfs", "squashfs",
})


def default_noise() -> tuple[str, ...]:
    """Path prefixes and parts that are never the job's data: the runtime, libraries, caches."""
    prefixes = {p.rstrip("/") + "/" for p in (sys.prefix, sys.base_prefix, sys.exec_prefix) if p}
    # (/dev is not watched: only its tmpfs, /dev/shm, which holds real data)
    prefixes |= {"/usr/", "/lib/", "/lib64/", "/bin/", "/sbin/", "/etc/", "/proc/", "/sys/", "/run/",
                 "/var/lib/", "/var/cache/", "/var/log/", "/snap/", "/opt/conda/pkgs/",
                 str(Path("~/.cache").expanduser()) + "/", str(Path("~/.local/lib").expanduser()) + "/",
                 str(Path("~/.pyenv").expanduser()) + "/", str(Path("~/.config").expanduser()) + "/"}
    return tuple(sorted(prefixes))


NOISE_PARTS = ("/site-packages/", "/dist-packages/", "/__pycache__/", "/node_modules/", "/.git/")
NOISE_SUFFIX = re.compile(r"\.(pyc|so(\.\d+)*)$")


class FanotifyUnavailable(OSError):
    """fanotify cannot watch here (not Linux, no CAP_SYS_ADMIN, or a kernel without the features)."""


def _libc() -> ctypes.CDLL:
    libc = exec_gate._libc()  # fanotify_init and fanotify_mark, as the gate declares them
    libc.open_by_handle_at.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    libc.open_by_handle_at.restype = ctypes.c_int
    libc.statfs.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.statfs.restype = ctypes.c_int
    return libc


def _fsid(libc: ctypes.CDLL, path: str) -> bytes | None:
    buf = ctypes.create_string_buffer(256)  # struct statfs: f_fsid after seven 8-byte fields (x86-64, arm64)
    if libc.statfs(os.fsencode(path), buf) != 0:
        return None
    return buf.raw[56:64]


@dataclass(frozen=True)
class Mount:
    path: str
    fstype: str
    device: str


def real_mounts(mountinfo: str = "/proc/self/mountinfo") -> list[Mount]:
    """One mount per filesystem (bind mounts share a superblock), pseudo filesystems left out."""
    seen: set[str] = set()
    out: list[Mount] = []
    try:
        lines = Path(mountinfo).read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, rest = left.split(), right.split()
        if len(fields) < 5 or not rest:
            continue
        device, path, fstype = fields[2], _unescape(fields[4]), rest[0]
        if fstype in PSEUDO_FS or device in seen or path.startswith(("/proc/", "/sys/")):
            continue
        seen.add(device)
        out.append(Mount(path, fstype, device))
    return out


def _unescape(text: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def probe() -> str | None:
    """None when fanotify capture can run here, else the reason it cannot."""
    if not sys.platform.startswith("linux"):
        return "fanotify is Linux only"
    try:
        libc = _libc()
    except (OSError, AttributeError) as exc:
        return f"no fanotify in the C library: {exc}"
    fd = libc.fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_REPORT_DFID_NAME, os.O_RDONLY)
    if fd < 0:
        err = ctypes.get_errno()
        return f"fanotify_init: {os.strerror(err)}" + (" (needs root / CAP_SYS_ADMIN)" if err == errno.EPERM else "")
    try:
        if libc.fanotify_mark(fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, MASK, -1, b"/") != 0:
            return f"fanotify_mark: {os.strerror(ctypes.get_errno())}"
    finally:
        os.close(fd)
    return None


@dataclass
class Captured:
    """What the watcher saw of one job, as canonical raw events (dicts) plus its own accounting."""

    events: list[dict[str, object]] = field(default_factory=list)
    gaps: list[dict[str, object]] = field(default_factory=list)
    processes: int = 0
    overflows: int = 0
    seen: int = 0  # fanotify events read, the job's or not
    process_records: list[ProcessRecord] = field(default_factory=list)


@dataclass
class _Named:
    """What one fanotify event names: a path per info record (None: its directory could not be
    placed), the file names as reported, and the target's own handle (FAN_REPORT_TARGET_FID)."""

    paths: dict[int, str | None] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    target: bytes | None = None


def _op_of(mask: int) -> str | None:
    for bit, op in ((FAN_RENAME, "rename"), (FAN_DELETE, "delete"), (FAN_CREATE, "create"),
                    (FAN_CLOSE_WRITE, "write"), (FAN_CLOSE_NOWRITE, "read")):
        if mask & bit:
            return op
    return None


def _fingerprint(path: str) -> dict[str, int] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return fingerprint_of(st) if stat.S_ISREG(st.st_mode) else None


class Watcher:
    """Watches the filesystems for one job: ``start()`` before the job is forked, ``stop()`` after it ended.

    ``workdir`` is the job's working directory: its directories are known by handle before the job
    starts, so that what the job does in them can be named even after it removed them."""

    def __init__(self, app_id: str, user: str | None, *, noise: Iterable[str] | None = None,
                 mounts: list[Mount] | None = None, workdir: str | Path | None = None) -> None:
        self.app_id, self.user = app_id, user
        self.noise = tuple(noise if noise is not None else default_noise())
        self.mounts = mounts if mounts is not None else real_mounts()
        self.workdir = str(workdir) if workdir is not None else None
        self.out = Captured()
        self._libc = _libc()
        self._fd = -1
        self._mount_fds: dict[bytes, int] = {}
        self._handles = DirectoryHandles(self._libc, self._mount_fds, lambda p: _fsid(self._libc, p))
        self._target_fid = False
        self._proc: socket.socket | None = None
        self._launcher = os.getpid()
        self._tree: set[int] = set()
        self._foreign: set[int] = set()  # pids known not to be the job's (forgotten when a pid is reused)
        self._stop_r, self._stop_w = os.pipe()
        self._thread: threading.Thread | None = None
        self._seq = 0
        self._last_ts = 0
        self._mono_to_wall = time.time_ns() - time.monotonic_ns()
        self._procs: dict[int, ProcessRecord] = {}  # pid → the process that has it now
        self._all_procs: list[ProcessRecord] = []
        self._xattrs: dict[str, dict[str, str]] = {}
        self._xattr_ts: dict[str, int] = {}
        self._opens: dict[tuple[str, str], list[int]] = {}  # (proc, path) → [first open ts, opens not closed]
        self._epoch: dict[str, int] = {}  # path → count of changes, so a read after a change is read again
        self._read_at: dict[tuple[str, str], int] = {}  # (proc, path) → epoch of its last recorded read
        self._touched: set[str] = set()  # the run's files, as they are named now
        self._walked: dict[str, int] = {}  # a file found beneath a renamed directory → its rename event
        self._dropped: set[int] = set()
        self._unresolved = 0
        self._rewritten: dict[bytes, int] = {}  # of the batch being parsed, see _later_writes
        self._idents: dict[int, tuple[int, int]] = {}  # event index → (dev, inode) of its file, for _handed
        self._index = -1
        #: the last time (ms) the queue was found empty: every event read since happened after it
        self._empty_at = time.time_ns() // 1_000_000
        self._gate: subprocess.Popen[bytes] | None = None
        self._gate_samples: str | None = None

    # -- the exec gate --------------------------------------------------------------------------
    def _start_gate(self) -> None:
        """Start :mod:`exec_gate` (before anything else: its own start is not the job's), or say why not."""
        fd, self._gate_samples = tempfile.mkstemp(prefix="provenance-exec-", suffix=".jsonl")
        os.close(fd)
        why = None
        try:
            self._gate = subprocess.Popen(
                [sys.executable, "-S", "-E", exec_gate.__file__, str(self._launcher), self._gate_samples,
                 *(m.path for m in self.mounts)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, close_fds=True)
            assert self._gate.stdout is not None
            ready, _, _ = select.select([self._gate.stdout], [], [], GATE_START_S)
            line = self._gate.stdout.readline().decode("utf-8", "replace").strip() if ready else "no answer"
            if line != "ok":
                why = line.removeprefix("error: ")
        except OSError as exc:
            why = exc.strerror or str(exc)
        if why is not None:
            self._stop_gate()
            self.out.gaps.append({"reason": f"no exec gate ({why}): the pipes and redirections of processes that "
                                            "end very quickly may be missed", "kind": "no_exec_gate"})

    def _stop_gate(self) -> list[dict[str, object]]:
        """Stop the gate; what it saw."""
        samples: list[dict[str, object]] = []
        if self._gate is not None:
            gate, self._gate = self._gate, None
            if gate.stdin is not None:
                gate.stdin.close()
            try:
                gate.wait(timeout=10)
            except subprocess.TimeoutExpired:
                gate.kill()
                gate.wait()
            if gate.stdout is not None:
                gate.stdout.close()
        if self._gate_samples is not None:
            try:
                with open(self._gate_samples, encoding="utf-8") as f:
                    for line in f:
                        try:
                            samples.append(json.loads(line))
                        except ValueError:
                            continue  # a line cut short by a kill
            except OSError:
                pass
            try:
                os.unlink(self._gate_samples)
            except OSError:
                pass
            self._gate_samples = None
        return samples

    def _handed(self, samples: list[dict[str, object]]) -> None:
        """Join what the processes held when they exec'd to the file events: a file a process was handed open
        (``cmd > out``: the shell opened it, cmd wrote it) was used by that process too; ``attrs.shared_with``
        names the other processes of the run that read (or wrote) it through a descriptor they were handed."""
        by_key = {r.proc: r for r in self._all_procs}
        by_pid: dict[int, list[ProcessRecord]] = {}
        for r in self._all_procs:
            by_pid.setdefault(r.pid, []).append(r)
        for sample in samples:
            key, pid = sample.get("proc"), sample.get("pid")
            rec = by_key.get(key) if isinstance(key, str) else None
            if rec is None and isinstance(pid, int):  # keyed by pid alone: gone before its start time was read
                rec = next((r for r in by_pid.get(pid, ()) if r.proc == str(pid)), None)
            if rec is None:
                continue
            paths = {(item[0], item[1]): item[2] for item in _list(sample.get("file_paths"))
                     if isinstance(item, list) and len(item) == 3 and isinstance(item[2], str)}
            rec.note(Descriptors(pipes_in=set(_ints(sample.get("pipes_in"))),
                                 pipes_out=set(_ints(sample.get("pipes_out"))),
                                 files_in=set(_pairs(sample.get("files_in"))),
                                 files_out=set(_pairs(sample.get("files_out"))), paths=paths),
                     to_parent=_ints(sample.get("pipes_to_parent")), from_parent=_ints(sample.get("pipes_from_parent")))
        self._fed_by_parents(by_key, self._sampled(samples, by_key, by_pid))
        holders: dict[tuple[str, tuple[int, int]], list[ProcessRecord]] = {}
        for r in self._all_procs:
            for side, files in (("read", r.files_in), ("write", r.files_out)):
                for f in files:
                    holders.setdefault((side, f), []).append(r)
        if not holders:
            return
        for index, event in enumerate(self.out.events):
            op = event["op"]
            attrs = event["attrs"]
            assert isinstance(attrs, dict)
            fp = attrs.get("fingerprint")
            ident = self._idents.get(index) or ((fp["dev"], fp["inode"]) if isinstance(fp, dict) else None)
            if op not in ("read", "write", "create") or ident is None:
                continue
            # a create through a handed descriptor is the process's that was handed it, as its writes are
            found = holders.get(("read" if op == "read" else "write", ident))
            if not found:
                continue
            ts = int(event["ts"])  # type: ignore[call-overload]
            opened = int(attrs.get("opened_ts", ts))
            # the same file, not another that got the inode of a deleted one: the path it had when held
            others = sorted({r.proc for r in found if r.proc != attrs["proc"]
                             and (r.start_ts is None or r.start_ts <= ts + HANDED_SLACK_MS)
                             and (r.end_ts is None or r.end_ts + HANDED_SLACK_MS >= opened)
                             and r.paths.get(ident, event["uri"]) == event["uri"]})
            if others:
                attrs["shared_with"] = others
                named = str(attrs["proc"])
                if all(named in _ancestors(by_key, o) for o in others):
                    attrs["handed_on"] = True  # its parent opened it for them (`cmd > out`), not to use it


    def _bound_writes(self) -> None:
        """A write ended, at the latest, when every process that could have made it had exited (the kernel's exit
        time): the process named, unless it only opened the file for others, and those it handed it to. The
        watcher reads the close later than that when it reads the queue late, or when the opener keeps the file
        open after its child wrote it (``Popen(stdout=open(...))``): ``ts`` is brought back to that exit."""
        by_key = {r.proc: r for r in self._all_procs}
        for event in self.out.events:
            attrs = event["attrs"]
            if event["op"] != "write" or not isinstance(attrs, dict):
                continue
            shared = attrs.get("shared_with")
            procs = [*([] if attrs.get("handed_on") else [attrs.get("proc")]),
                     *(shared if isinstance(shared, list) else [])]
            ends = [r.end_ts if (r := by_key.get(p) if isinstance(p, str) else None) is not None else None
                    for p in procs]
            if not ends or any(e is None for e in ends):
                continue
            ts, last = int(event["ts"]), max(e for e in ends if e is not None) + 1  # type: ignore[call-overload]
            if int(attrs.get("opened_ts", ts)) <= last < ts:
                event["ts"] = last

    @staticmethod
    def _sampled(samples: list[dict[str, object]], by_key: dict[str, ProcessRecord],
                 by_pid: dict[int, list[ProcessRecord]]) -> set[str]:
        out: set[str] = set()
        for sample in samples:
            key, pid = sample.get("proc"), sample.get("pid")
            if isinstance(key, str) and key in by_key:
                out.add(key)
            elif isinstance(pid, int) and any(r.proc == str(pid) for r in by_pid.get(pid, ())):
                out.add(str(pid))
        return out

    def _fed_by_parents(self, by_key: dict[str, ProcessRecord], sampled: set[str]) -> None:
        """A pipe a process was handed to read that no process of the run was seen writing, and that none of its
        ancestors was handed when it started its program, was made by its parent's program (``tar czf`` feeding
        the gzip it started, which may have written it all and closed it before the gate looked at it). When the
        parent ran a program of its own (the gate saw it) and every other process it started did too (none of
        them holds it: a copy of the parent that ran no program could be the writer), the parent wrote it: it
        goes on ``pipes_from_parent``."""
        written = {p for r in self._all_procs for p in r.pipes_out}
        children: dict[str, list[ProcessRecord]] = {}
        for r in self._all_procs:
            if r.ppid_proc is not None:
                children.setdefault(r.ppid_proc, []).append(r)
        for r in self._all_procs:
            parent = by_key.get(r.ppid_proc) if r.ppid_proc is not None else None
            if parent is None or parent.proc not in sampled or r.proc not in sampled:
                continue
            unwritten = set(r.pipes_in) - written - set(r.pipes_from_parent)
            for up in _ancestors(by_key, r.proc):
                if up in by_key:
                    unwritten -= set(by_key[up].pipes_in) | set(by_key[up].pipes_out)
            if not unwritten:
                continue
            others, stack = [], [c for c in children.get(parent.proc, ()) if c is not r]
            while stack:
                c = stack.pop()
                others.append(c)
                stack.extend(children.get(c.proc, ()))
            if all(o.proc in sampled for o in others):
                r.pipes_from_parent = sorted(set(r.pipes_from_parent) | unwritten)

    # -- set-up ---------------------------------------------------------------------------------
    def start(self) -> None:
        if os.environ.get("PROVENANCE_EXEC_GATE", "1") != "0":  # 0: no gate (to measure what it costs)
            self._start_gate()
        else:
            self.out.gaps.append({"reason": "the exec gate is off (PROVENANCE_EXEC_GATE=0): the pipes and "
                                            "redirections of processes that end very quickly may be missed",
                                  "kind": "no_exec_gate"})
        base = FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_UNLIMITED_QUEUE
        fd = self._libc.fanotify_init(base | FAN_REPORT_DFID_NAME_TARGET, os.O_RDONLY | os.O_LARGEFILE)
        self._target_fid = fd >= 0
        if fd < 0 and ctypes.get_errno() == errno.EINVAL:  # before Linux 5.17: created directories by name
            fd = self._libc.fanotify_init(base | FAN_REPORT_DFID_NAME, os.O_RDONLY | os.O_LARGEFILE)
        if fd < 0:
            raise FanotifyUnavailable(ctypes.get_errno(), f"fanotify_init: {os.strerror(ctypes.get_errno())}")
        self._fd = fd
        for mount in self.mounts:
            if self._libc.fanotify_mark(fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, MARK_MASK, -1,
                                        os.fsencode(mount.path)) != 0:
                err = ctypes.get_errno()
                if mount.path == "/":
                    self.close()
                    raise FanotifyUnavailable(err, f"fanotify_mark /: {os.strerror(err)}")
                self.out.gaps.append({"reason": f"{mount.path} ({mount.fstype}) is not watched: {os.strerror(err)}"})
                continue
            fsid = _fsid(self._libc, mount.path)
            if fsid is not None and fsid not in self._mount_fds:
                try:
                    self._mount_fds[fsid] = os.open(mount.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                except OSError:
                    pass
        if self.workdir is not None:  # after the marks: a rename from here on is in the queue
            self._handles.prefill(self.workdir, skip=self._noise)
        try:
            self._proc = open_proc_connector()
        except OSError as exc:
            self._proc = None
            self.out.gaps.append({"reason": f"no proc connector ({exc.strerror}): processes are attributed from "
                                            "/proc, so very short-lived children may be missed"})
        self._thread = threading.Thread(target=self._loop, name="fanotify-watcher", daemon=True)
        self._thread.start()

    def alive(self) -> list[ProcessRecord]:
        """The job's processes that still run (detached children that outlived the job's root), as far as
        ``/proc`` says now: a pid of the tree that is neither gone, nor a zombie, nor reused since."""
        out = []
        for pid in sorted(set(self._tree)):
            rec = self._procs.get(pid)
            if rec is None or rec.end_ts is not None:
                continue
            state = processes.state_of(pid)
            if state is not None and state[0] != "Z" and processes.proc_key(pid, state[1]) == rec.proc:
                out.append(rec)
        return out

    def add_root(self, pid: int) -> None:
        self._tree.add(pid)  # its record is made in the watcher's thread, which owns them

    def stop(self) -> Captured:
        """Drain what is left (the job has ended), then close everything."""
        if self._thread is not None:
            os.write(self._stop_w, b"x")
            self._thread.join()
        samples = self._stop_gate()
        self.close()
        self._handed(samples)
        self._bound_writes()
        if self._dropped:
            self.out.events = [e for i, e in enumerate(self.out.events) if i not in self._dropped]
        if self._unresolved > GAP_DETAILS:
            self.out.gaps.append({"reason": f"{self._unresolved - GAP_DETAILS} more file operations whose directory "
                                            "was gone before the watcher could name it", "kind": "unresolved_path"})
        for rec in self._all_procs:
            if rec.exe is None and rec.argv:
                rec.exe = os.path.basename(rec.argv[0]) or None
        self.out.processes = len(self._tree)
        self.out.process_records = list(self._all_procs)
        return self.out

    def close(self) -> None:
        for fd in [self._fd, *self._mount_fds.values(), self._stop_r, self._stop_w]:
            try:
                if fd >= 0:
                    os.close(fd)
            except OSError:
                pass
        self._fd, self._stop_r, self._stop_w = -1, -1, -1
        self._mount_fds.clear()
        if self._proc is not None:
            self._proc.close()
            self._proc = None
        if self._gate is not None:
            self._stop_gate()

    # -- the loop -------------------------------------------------------------------------------
    def _loop(self) -> None:
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        poller.register(self._stop_r, select.POLLIN)
        if self._proc is not None:
            poller.register(self._proc.fileno(), select.POLLIN)
        stopping = False
        while True:
            ready = {fd for fd, _ in poller.poll(IDLE_POLL_MS if not stopping else 0)}
            if not ready and not stopping:
                self._drain_fanotify()  # nothing came: the queue is empty as of now (see _empty_at)
                continue
            if self._stop_r in ready:
                stopping = True
                poller.unregister(self._stop_r)
            elif self._fd in ready:
                # let a few events gather: one wake-up per event would take more of the job's CPU than
                # the events themselves (forks are read first, to read /proc while the processes live)
                self._drain_proc()
                time.sleep(COALESCE_S)
            self._drain_proc()
            got = self._drain_fanotify() if (self._fd in ready or stopping) else 0
            if stopping and got == 0:
                self._drain_proc()
                if self._drain_fanotify() == 0:
                    return

    def _drain_proc(self) -> None:
        if self._proc is None:
            return
        while True:
            try:
                data = self._proc.recv(65536)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self.out.gaps.append({"reason": "the proc connector overflowed: some children may be missed"})
                    continue
                return
            for what, a, b, mono in timed_proc_events(data):
                if what == PROC_EVENT_FORK:
                    self._foreign.discard(b)
                    # the launcher forks nothing but the job while the watcher runs
                    if a in self._tree or a == self._launcher:
                        self._tree.add(b)
                        self._adopt(b, a, mono)
                    elif b in self._tree:  # a pid of the job reused by another process
                        self._tree.discard(b)
                elif a in self._tree and (rec := self._procs.get(a)) is not None:
                    if what == PROC_EVENT_EXEC:
                        rec.argv = processes.argv_of(a)  # None if it is gone already: not its parent's
                        rec.exe = processes.exe_of(a) or rec.exe
                        if self._gate is None:  # else the gate saw them, before the exec closed any
                            rec.note(descriptors_of(a, at_exec=True))
                    elif what == PROC_EVENT_EXIT:
                        rec.end_ts = self._wall(mono)

    # -- processes ------------------------------------------------------------------------------
    def _wall(self, mono_ns: int) -> int:
        return (mono_ns + self._mono_to_wall) // 1_000_000

    def _adopt(self, pid: int, parent: int | None, mono_ns: int | None) -> ProcessRecord:
        """A process of the job, first seen: its key is read now, while it most likely still lives."""
        start = processes.starttime(pid)
        up = self._procs.get(parent) if parent is not None else None
        # a child not yet exec'd is a copy of its parent: its parent's program, until exec says otherwise
        rec = ProcessRecord(proc=processes.proc_key(pid, start), pid=pid, ppid_proc=up.proc if up else None,
                            exe=(processes.exe_of(pid) if start is not None else None) or (up.exe if up else None),
                            argv=(processes.argv_of(pid) if start is not None else None) or (up.argv if up else None),
                            start_ts=self._wall(mono_ns) if mono_ns is not None else self._now())
        if start is not None and mono_ns is None and self._gate is None:
            rec.note(descriptors_of(pid))  # found late (by a file event): what it holds now is all there is
        self._procs[pid] = rec
        self._all_procs.append(rec)
        return rec

    def _process(self, pid: int) -> ProcessRecord:
        rec = self._procs.get(pid)
        return rec if rec is not None else self._adopt(pid, _ppid(pid), None)

    def _drain_fanotify(self) -> int:
        n = 0
        while True:
            before = time.time_ns() // 1_000_000
            try:
                data = os.read(self._fd, 1 << 18)
            except BlockingIOError:
                self._empty_at = max(self._empty_at, before)  # every event read from now on came after this
                return n
            except OSError:
                return n
            if not data:
                return n
            n += self._parse(data)

    def _parse(self, data: bytes) -> int:
        self._rewritten = self._later_writes(data)
        self._index = -1
        offset, count = 0, 0
        while offset + _META.size <= len(data):
            event_len, _vers, _res, meta_len, mask, fd, pid = _META.unpack_from(data, offset)
            if event_len < _META.size:
                break
            count += 1
            self._index += 1
            self.out.seen += 1
            if fd != FAN_NOFD:
                os.close(fd)
            if mask & FAN_Q_OVERFLOW:
                self.out.overflows += 1
            elif mask & FAN_ONDIR:
                if mask & FAN_RENAME:  # anyone's: the table must follow every directory that moves
                    self._directory_renamed(pid, self._named(data, offset + meta_len, offset + event_len))
                elif mask & (FAN_CREATE | FAN_DELETE | FAN_ATTRIB) and self._ours(pid):
                    self._directory(mask, pid, self._named(data, offset + meta_len, offset + event_len))
                # opening and listing a directory is not lineage
            elif self._ours(pid):
                self._event(mask, pid, self._named(data, offset + meta_len, offset + event_len))
            offset += event_len
        return count

    @staticmethod
    def _later_writes(data: bytes) -> dict[bytes, int]:
        """File handle → index of the last write to end in this batch. A ``stat`` taken while handling an
        earlier event of that file would show the later content, so that event gets no fingerprint."""
        out: dict[bytes, int] = {}
        offset, index = 0, 0
        while offset + _META.size <= len(data):
            event_len, _vers, _res, meta_len, mask, _fd, _pid = _META.unpack_from(data, offset)
            if event_len < _META.size:
                break
            if mask & FAN_CLOSE_WRITE and not mask & FAN_ONDIR:
                start, end = offset + meta_len, offset + event_len
                while start + _INFO.size <= end:
                    info_type, _pad, length = _INFO.unpack_from(data, start)
                    if length == 0:
                        break
                    if info_type == INFO_FID:
                        nbytes = _HANDLE.unpack_from(data, start + _INFO.size)[1]
                        out[data[start + _INFO.size: start + _INFO.size + _HANDLE.size + nbytes]] = index
                        break
                    start += length
            offset += event_len
            index += 1
        return out

    def _fingerprint(self, named: _Named, path: str) -> dict[str, int] | None:
        """The file's fingerprint now, found by its own handle where the event gave one (so a file
        renamed since is still found); None if it is gone, or if a later write in the queue already
        changed it."""
        st, later = self._stat(named, path)
        return fingerprint_of(st) if st is not None and not later else None

    def _stat(self, named: _Named, path: str) -> tuple[os.stat_result | None, bool]:
        """The file's ``stat`` now (None if it is gone or not a regular file), and whether a later write in the
        queue already changed it (its identity, device and inode, is still the event's file)."""
        target = named.target
        later = target is not None and self._rewritten.get(target, -1) > self._index
        mount_fd = self._mount_fds.get(target[:8]) if target is not None else None
        try:
            if target is None or mount_fd is None:
                st = os.stat(path)
            else:
                fd = self._libc.open_by_handle_at(mount_fd, target[8:], O_PATH | os.O_CLOEXEC)
                if fd < 0:
                    return None, later
                try:
                    st = os.fstat(fd)
                finally:
                    os.close(fd)
        except (OSError, ValueError):
            return None, later
        return (st if stat.S_ISREG(st.st_mode) else None), later

    def _ours(self, pid: int) -> bool:
        if pid in self._tree:
            return True
        if pid in self._foreign or pid == self._launcher:
            return False
        self._drain_proc()  # the fork may be waiting in the connector's queue
        if pid in self._tree:
            return True
        if self._proc is None:  # no connector: walk the parent chain while the process lives
            chain, current = [], pid
            for _ in range(64):
                parent = _ppid(current)
                if parent is None or parent <= 1:
                    break
                chain.append(current)
                if parent in self._tree or parent == self._launcher:
                    for child in reversed(chain):  # parents first, so each knows its parent's key
                        self._tree.add(child)
                        if child not in self._procs:
                            self._adopt(child, _ppid(child), None)
                    return True
                current = parent
            return False  # not cached: a pid seen before the job's fork might still become its
        self._foreign.add(pid)
        return False

    def _named(self, data: bytes, start: int, end: int) -> _Named:
        out = _Named()
        while start + _INFO.size <= end:
            info_type, _pad, length = _INFO.unpack_from(data, start)
            if length == 0:
                break
            if info_type in (INFO_DFID_NAME, INFO_OLD_DFID_NAME, INFO_NEW_DFID_NAME, INFO_FID):
                fsid, nbytes, _htype = _HANDLE.unpack_from(data, start + _INFO.size)
                handle_at = start + _INFO.size + _HANDLE.size
                handle = data[start + _INFO.size + 8: handle_at + nbytes]  # struct file_handle, whole
                if info_type == INFO_FID:
                    out.target = fsid + handle
                else:
                    name = os.fsdecode(data[handle_at + nbytes: start + length].split(b"\0", 1)[0])
                    directory = self._handles.resolve(fsid, handle)
                    out.names[info_type] = name
                    out.paths[info_type] = (None if directory is None else
                                            directory if name in ("", ".") else os.path.join(directory, name))
            start += length
        return out

    def _noise(self, path: str) -> bool:
        return path.startswith(self.noise) or any(p in path for p in NOISE_PARTS) or bool(NOISE_SUFFIX.search(path))

    def _now(self) -> int:
        """Wall time in ms, never before the time given to an event read earlier."""
        ts = time.time_ns() // 1_000_000
        if ts < self._last_ts:
            ts = self._last_ts
        self._last_ts = ts
        return ts

    def _unresolvable(self, op: str | None, name: str | None) -> None:
        if op is None:
            return  # an open, or an attribute change: no file event is lost
        self._unresolved += 1
        if self._unresolved <= GAP_DETAILS:
            self.out.gaps.append({"reason": f"a {op} of {name!r}: its directory was gone before the watcher could "
                                            "name it", "kind": "unresolved_path", "op": op, "name": name})

    # -- directories ----------------------------------------------------------------------------
    def _directory_renamed(self, pid: int, named: _Named) -> None:
        src, dst = named.paths.get(INFO_OLD_DFID_NAME), named.paths.get(INFO_NEW_DFID_NAME)
        if src is None or dst is None:
            if dst is not None and named.target is not None:
                self._handles.enter(named.target, dst)
            if self._ours(pid):
                self._unresolvable("rename", named.names.get(INFO_OLD_DFID_NAME) or named.names.get(INFO_NEW_DFID_NAME))
            return
        self._handles.renamed(src, dst, named.target)
        if self._ours(pid):
            self._moved_directory(src, dst, pid)

    def _moved_directory(self, src: str, dst: str, pid: int) -> None:
        """Emit the renames of the files a directory rename moved: those the run touched, then those
        beneath the new path now. A file found there that the job creates later in the queue was not
        moved: its rename is dropped when that create is read."""
        prefix = src + "/"
        for key in [k for k in self._opens if k[1].startswith(prefix)]:
            self._opens[(key[0], dst + key[1][len(src):])] = self._opens.pop(key)
        moved: set[str] = set()
        for path in sorted(p for p in self._touched if p.startswith(prefix)):
            target = dst + path[len(src):]
            if not (self._noise(path) and self._noise(target)):
                self._emit("rename", path, pid, dst=target, attrs={"via_directory_rename": True},
                           fingerprint=_fingerprint(target))
            moved.add(target)
        found = 0
        for root, dirs, files in os.walk(dst):
            dirs.sort()
            for name in sorted(files):
                target = os.path.join(root, name)
                if target in moved or self._noise(target):
                    continue
                found += 1
                if found > DIRECTORY_RENAME_FILES:
                    self.out.gaps.append({"reason": f"{src} was renamed to {dst}, which holds more than "
                                                    f"{DIRECTORY_RENAME_FILES} files: the renames of the others "
                                                    "are missing", "kind": "directory_rename_too_large"})
                    return
                index = self._emit("rename", src + target[len(dst):], pid, dst=target,
                                   attrs={"via_directory_rename": True}, fingerprint=_fingerprint(target))
                self._walked[target] = index

    def _directory(self, mask: int, pid: int, named: _Named) -> None:
        path = named.paths.get(INFO_DFID_NAME)
        if mask & FAN_CREATE and path is not None:
            key = named.target if self._target_fid else self._handles.key_of(path)
            if key is not None:
                self._handles.enter(key, path)
        if mask & FAN_DELETE and named.target is not None:
            self._handles.removed(named.target)
        # making or removing an (empty) directory is not lineage; its tags are
        if path is not None and mask & FAN_ATTRIB and not self._noise(path + "/"):
            self._attrib(path, pid)

    # -- files ----------------------------------------------------------------------------------
    def _file_renamed(self, named: _Named, pid: int) -> None:
        src, dst = named.paths.get(INFO_OLD_DFID_NAME), named.paths.get(INFO_NEW_DFID_NAME)
        if (src is None and INFO_OLD_DFID_NAME in named.names) or (dst is None and INFO_NEW_DFID_NAME in named.names):
            self._unresolvable("rename", named.names.get(INFO_OLD_DFID_NAME) or named.names.get(INFO_NEW_DFID_NAME))
        src = None if src is None or self._noise(src) else src
        dst = None if dst is None or self._noise(dst) else dst
        if src and dst:
            self._emit("rename", src, pid, dst=dst, fingerprint=self._fingerprint(named, dst))
        elif dst:  # moved in from a place nobody watches
            self._emit("create", dst, pid, fingerprint=self._fingerprint(named, dst))
        elif src:
            self._emit("delete", src, pid)

    def _event(self, mask: int, pid: int, named: _Named) -> None:
        if mask & FAN_RENAME:
            self._file_renamed(named, pid)
            return
        path = named.paths.get(INFO_DFID_NAME)
        if path is None:
            if INFO_DFID_NAME in named.names:
                self._unresolvable(_op_of(mask), named.names[INFO_DFID_NAME])
            return
        if mask & FAN_OPEN_EXEC and not _SHARED_OBJECT.search(path):
            self._process(pid).exe = os.path.basename(path)  # the program it runs now (the loader aside)
        if "/__pycache__/" in path and path.endswith(".pyc"):
            if not mask & FAN_CLOSE_NOWRITE:
                return  # the interpreter caching bytecode
            head, _, name = path.rpartition("/__pycache__/")  # reading cached bytecode is reading the code
            path = f"{head}/{name.split('.', 1)[0]}.py"
            mask = FAN_CLOSE_NOWRITE
            named.target = None  # the handle is the bytecode's; the fingerprint is the source's
        if self._noise(path):
            return
        proc = self._process(pid).proc
        key = (proc, path)
        ts = self._now()
        if mask & FAN_CREATE:  # (opened_ts: the earliest it can have happened, as for a read's open)
            st, later = self._stat(named, path)
            self._emit("create", path, pid, ts=ts, attrs={"opened_ts": min(ts, self._empty_at)},
                       fingerprint=fingerprint_of(st) if st is not None and not later else None, ident=st)
        if mask & FAN_OPEN:
            entry = self._opens.get(key)
            if entry is None:
                self._opens[key] = [self._empty_at, 1]
            else:
                entry[1] += 1
        if mask & FAN_CLOSE_WRITE:
            seen_open = key in self._opens
            opened = self._closed(key, ts)
            st, later = self._stat(named, path)
            if seen_open and st is not None and not later and not mask & FAN_CREATE \
                    and max(st.st_mtime_ns, st.st_ctime_ns) < (opened - UNCHANGED_SLACK_MS) * 1_000_000:
                # opened for writing (`r+`, sqlite's read-write open) but neither its content nor its metadata
                # changed since it was opened: a read
                self._read(key, path, pid, ts, opened, st)
            else:
                self._emit("write", path, pid, ts=ts, attrs={"opened_ts": opened},
                           fingerprint=fingerprint_of(st) if st is not None and not later else None, ident=st)
        if mask & FAN_CLOSE_NOWRITE:
            opened = self._closed(key, ts)
            if self._read_at.get(key) != self._epoch.get(path, 0):  # this process's first read of this content
                st, later = self._stat(named, path)
                self._read(key, path, pid, ts, opened, None if later else st, ident=st)
        if mask & FAN_ATTRIB:
            self._attrib(path, pid)
        if mask & FAN_DELETE:
            self._xattrs.pop(path, None)
            self._emit("delete", path, pid, ts=ts)

    def _read(self, key: tuple[str, str], path: str, pid: int, ts: int, opened: int, st: os.stat_result | None,
              ident: os.stat_result | None = None) -> None:
        """A read, unless the process read this content of the file before (one ``read`` per content)."""
        if self._read_at.get(key) == self._epoch.get(path, 0):
            return
        self._read_at[key] = self._epoch.get(path, 0)
        self._emit("read", path, pid, ts=ts, attrs={"opened_ts": opened},
                   fingerprint=fingerprint_of(st) if st is not None else None, ident=ident or st)

    def _closed(self, key: tuple[str, str], ts: int) -> int:
        """The open time of a file the process closes now (its close time, if the open was not seen:
        the kernel merged it into an earlier one)."""
        entry = self._opens.get(key)
        if entry is None:
            return min(ts, self._empty_at)
        entry[1] -= 1
        if entry[1] <= 0:
            del self._opens[key]
        return entry[0]

    def _attrib(self, path: str, pid: int) -> None:
        """An attribute changed: compare the file's ``user.prov.*`` extended attributes with the last seen."""
        try:
            names = [n for n in os.listxattr(path) if n.startswith("user.prov.")]
            now = {n: os.getxattr(path, n).decode("utf-8", "replace") for n in names}
        except OSError:
            return
        before = self._xattrs.get(path, {})
        # a later change of the same file's tags gets a later time, even within one millisecond
        ts = max(self._now(), self._xattr_ts.get(path, 0) + 1)
        changed = False
        for name, value in now.items():
            if before.get(name) != value:
                self._emit("xattr_set", path, pid, ts=ts, attrs={"name": name, "value": value})
                changed = True
        for name in before.keys() - now.keys():
            self._emit("xattr_remove", path, pid, ts=ts, attrs={"name": name})
            changed = True
        if changed:
            self._xattr_ts[path] = ts
        self._xattrs[path] = now

    def _confirm(self, path: str, made_here: bool) -> None:
        """The first event after a walk found ``path`` beneath a renamed directory: if it makes the
        file, the file was not there at the rename, and the rename found for it is dropped."""
        index = self._walked.pop(path, None)
        if index is not None and made_here:
            self._dropped.add(index)

    def _emit(self, op: str, path: str, pid: int, *, dst: str | None = None, ts: int | None = None,
              attrs: dict[str, object] | None = None, fingerprint: dict[str, int] | None = None,
              ident: os.stat_result | None = None) -> int:
        rec = self._process(pid)
        rec.file_events += 1
        if self._walked:
            self._confirm(path, op == "create")
            if dst is not None:
                self._confirm(dst, True)
        if op not in ("read", "xattr_set", "xattr_remove"):
            self._epoch[path] = self._epoch.get(path, 0) + 1
        if op == "delete":
            self._touched.discard(path)
        elif op == "rename" and dst is not None:
            self._touched.discard(path)
            self._touched.add(dst)
            self._epoch[dst] = self._epoch.get(dst, 0) + 1
        else:
            self._touched.add(path)
        self._seq += 1
        event_attrs: dict[str, object] = {"pid": pid, "proc": rec.proc, **(attrs or {})}
        if fingerprint is not None:
            event_attrs["fingerprint"] = fingerprint
        event: dict[str, object] = {"source": "fanotify", "kind": "file", "op": op,
                                    "ts": ts if ts is not None else self._now(),
                                    "app_id": self.app_id, "uri": path, "attrs": event_attrs,
                                    "event_id": f"fanotify:{self.app_id}:{self._seq}"}
        if dst is not None:
            event["dst"] = dst
        if self.user:
            event["user"] = self.user
        self.out.events.append(event)
        if ident is not None:  # which file it was, even where its content at the event is unknown
            self._idents[len(self.out.events) - 1] = (ident.st_dev, ident.st_ino)
        return len(self.out.events) - 1


def _ancestors(by_key: dict[str, ProcessRecord], proc: str) -> set[str]:
    out: set[str] = set()
    rec = by_key.get(proc)
    while rec is not None and rec.ppid_proc is not None and rec.ppid_proc not in out:
        out.add(rec.ppid_proc)
        rec = by_key.get(rec.ppid_proc)
    return out


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _ints(value: object) -> list[int]:
    return [v for v in value if type(v) is int] if isinstance(value, list) else []


def _pairs(value: object) -> list[tuple[int, int]]:
    if not isinstance(value, list):
        return []
    return [(v[0], v[1]) for v in value if isinstance(v, list) and len(v) == 2 and all(type(x) is int for x in v)]


def _ppid(pid: int) -> int | None:
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat_line.rsplit(")", 1)[1].split()[1])
