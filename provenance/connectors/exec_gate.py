"""What a process was handed when it started its program: the pipes and files its shell (or parent) set up.

``sort in.csv | gzip > out.gz``: the shell opens ``out.gz`` and makes the pipe, then each command inherits its
ends and runs. fanotify names the process that opened or closed a file, which for ``> out.gz`` is often the
shell, never gzip; and a pipe is no file at all. What links sort's read to gzip's output is in the processes'
descriptor tables at the moment each runs its program, which a short-lived command leaves before anyone could
look at ``/proc`` afterwards.

So the gate holds every ``execve`` of the job for the moment it takes to read them: a fanotify group of the
content class with ``FAN_OPEN_EXEC_PERM`` on each filesystem makes the kernel wait, when a process opens the
program it is about to run, until the gate answers. Before it answers (always "allow"), for a process that
descends from the launcher, it reads ``/proc/<pid>/fd``: the descriptors not marked close-on-exec are what the
new program starts with. Everything else execs without a look.

The gate is a process of its own (``python -S -E exec_gate.py``, standard library only): a permission event
holds every exec on the machine until answered, and a process with one thread and no other work answers in
microseconds, where a thread sharing the launcher's interpreter could wait for its lock. If the gate dies, the
kernel lets every waiting exec through; it exits when the launcher closes its stdin (or dies).

Protocol: ``exec_gate.py <launcher pid> <samples file> <mount>...``; one line on stdout once the marks are
placed (``ok``, or ``error: <why>``); one JSON object per line in the samples file:
``{"proc", "pid", "ts", "pipes_in", "pipes_out", "files_in", "files_out", "file_paths", "pipes_to_parent",
"pipes_from_parent"}``
(files as ``[dev, inode]``; ``pipes_to_parent``: the pipes it writes whose read end its parent holds;
``pipes_from_parent``: the pipes it reads whose write end its parent holds).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import select
import stat
import struct
import sys
import time
from dataclasses import dataclass, field

FD_LIMIT = 256  # the descriptors of a process looked at
O_ACCMODE, O_CLOEXEC = 0o3, 0o2000000
ANCESTRY_LIMIT = 64

# <linux/fanotify.h>
FAN_CLASS_CONTENT, FAN_CLOEXEC, FAN_UNLIMITED_QUEUE = 0x4, 0x1, 0x10
FAN_MARK_ADD, FAN_MARK_FILESYSTEM = 0x1, 0x100
FAN_OPEN_EXEC_PERM = 0x00040000
FAN_ALLOW = 0x01
FAN_NOFD = -1
_META = struct.Struct("=IBBHQii")  # event_len, vers, reserved, metadata_len, mask, fd, pid
_RESPONSE = struct.Struct("=iI")  # fd, response


@dataclass
class Descriptors:
    """What a process holds open that data can pass through: pipes (by inode) and regular files (by
    ``(dev, inode)``), each for reading and for writing."""

    pipes_in: set[int] = field(default_factory=set)
    pipes_out: set[int] = field(default_factory=set)
    files_in: set[tuple[int, int]] = field(default_factory=set)
    files_out: set[tuple[int, int]] = field(default_factory=set)
    #: the path each file had when looked at: an inode a deleted file left is soon another file's
    paths: dict[tuple[int, int], str] = field(default_factory=dict)

    def public(self) -> dict[str, object]:
        return {"pipes_in": sorted(self.pipes_in), "pipes_out": sorted(self.pipes_out),
                "files_in": [list(k) for k in sorted(self.files_in)],
                "files_out": [list(k) for k in sorted(self.files_out)],
                "file_paths": [[d, i, p] for (d, i), p in sorted(self.paths.items())]}


def descriptors_of(pid: int, *, at_exec: bool = False, both_ends: bool = False) -> Descriptors:
    """The pipes and files ``pid`` has open now; empty when it is gone. ``at_exec``: the process is about to
    run a new program, so descriptors marked close-on-exec are not the program's and are left out. A pipe it
    holds both ends of is one it is passing on (a shell between two forks), neither read nor written, unless
    ``both_ends``."""
    out = Descriptors()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")[:FD_LIMIT]
    except OSError:
        return out
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            pipe = target.startswith("pipe:[")
            if not pipe and not target.startswith("/"):
                continue  # sockets, anonymous inodes
            with open(f"/proc/{pid}/fdinfo/{fd}", "rb") as f:
                info = f.read(512)
            flags = next((int(line.split()[1], 8) for line in info.splitlines() if line.startswith(b"flags:")), None)
            if flags is None or (at_exec and flags & O_CLOEXEC):
                continue
            mode = flags & O_ACCMODE  # O_RDONLY 0, O_WRONLY 1, O_RDWR 2
            if pipe:
                inode = int(target[6:-1])
                if mode in (0, 2):
                    out.pipes_in.add(inode)
                if mode in (1, 2):
                    out.pipes_out.add(inode)
                continue
            st = os.stat(f"/proc/{pid}/fd/{fd}")
        except (OSError, ValueError):
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        key = (st.st_dev, st.st_ino)
        out.paths[key] = target.removesuffix(" (deleted)")
        if mode in (0, 2):
            out.files_in.add(key)
        if mode in (1, 2):
            out.files_out.add(key)
    if not both_ends:
        both = out.pipes_in & out.pipes_out
        out.pipes_in -= both
        out.pipes_out -= both
    return out


def _stat_fields(pid: int) -> tuple[int, int] | None:
    """(ppid, starttime) of a process; None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return int(fields[1]), int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def _descends(pid: int, ancestor: int) -> bool:
    current = pid
    for _ in range(ANCESTRY_LIMIT):
        found = _stat_fields(current)
        if found is None or found[0] <= 1:
            return False
        if found[0] == ancestor:
            return True
        current = found[0]
    return False


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.fanotify_init.argtypes = [ctypes.c_uint, ctypes.c_uint]
    libc.fanotify_init.restype = ctypes.c_int
    libc.fanotify_mark.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64, ctypes.c_int, ctypes.c_char_p]
    libc.fanotify_mark.restype = ctypes.c_int
    return libc


def _answer(fan: int, data: bytes, launcher: int, out: list[str]) -> None:
    offset = 0
    while offset + _META.size <= len(data):
        event_len, _vers, _res, _meta_len, mask, fd, pid = _META.unpack_from(data, offset)
        if event_len < _META.size:
            return
        offset += event_len
        try:
            if mask & FAN_OPEN_EXEC_PERM and _descends(pid, launcher):
                held = descriptors_of(pid, at_exec=True)
                found = _stat_fields(pid)
                if found is not None:
                    # the pipes it writes whose read end its parent keeps: `subprocess.run(capture_output=True)`,
                    # `$(cmd)` (the parent holds both ends until the child runs, then reads); and the pipes it reads
                    # whose write end its parent keeps: `Popen(stdin=PIPE).communicate(data)`, `tar czf` writing
                    # into the gzip it started (a pipe made after the parent's own exec, so not in its sample)
                    parent = descriptors_of(found[0], both_ends=True) if held.pipes_out or held.pipes_in else None
                    back = sorted(held.pipes_out & parent.pipes_in) if parent is not None else []
                    fed = sorted(held.pipes_in & parent.pipes_out) if parent is not None else []
                    out.append(json.dumps({"proc": f"{pid}.{found[1]}", "pid": pid, "ts": time.time_ns() // 1_000_000,
                                           **held.public(), "pipes_to_parent": back, "pipes_from_parent": fed},
                                          separators=(",", ":")))
        except Exception:  # whatever happens, the exec is let through below
            pass
        finally:
            if fd != FAN_NOFD:
                try:
                    os.write(fan, _RESPONSE.pack(fd, FAN_ALLOW))
                finally:
                    os.close(fd)


def main(argv: list[str]) -> int:
    launcher, samples_path, mounts = int(argv[0]), argv[1], argv[2:]
    libc = _libc()
    fan = libc.fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_UNLIMITED_QUEUE, os.O_RDONLY | os.O_LARGEFILE)
    if fan < 0:
        err = ctypes.get_errno()
        print(f"error: fanotify_init (content class): {os.strerror(err)}", flush=True)
        return 1
    marked = 0
    for mount in mounts:
        if libc.fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_OPEN_EXEC_PERM, -1,
                              os.fsencode(mount)) == 0:
            marked += 1
        elif mount == "/":
            print(f"error: fanotify_mark / (exec permission): {os.strerror(ctypes.get_errno())}", flush=True)
            return 1
    print("ok" if marked else "error: no filesystem could be marked", flush=True)
    if not marked:
        return 1
    lines: list[str] = []
    poller = select.poll()
    poller.register(fan, select.POLLIN)
    poller.register(0, select.POLLIN | select.POLLHUP)
    with open(samples_path, "a", encoding="utf-8") as samples:
        while True:
            ready = dict(poller.poll())
            if fan in ready:
                try:
                    data = os.read(fan, 1 << 16)
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EINTR):
                        return 1
                    data = b""
                _answer(fan, data, launcher, lines)
                if len(lines) >= 64:
                    samples.write("\n".join(lines) + "\n")
                    lines.clear()
            if 0 in ready:  # the launcher closed our stdin, or is gone
                if lines:
                    samples.write("\n".join(lines) + "\n")
                samples.flush()
                os.close(fan)
                return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
