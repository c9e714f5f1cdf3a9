"""fanotify capture: every process of a launched job, in any language (Linux, needs CAP_SYS_ADMIN).

The watcher puts a filesystem mark on each real filesystem of the machine, in the kernel's
"directory file handle + name" reporting mode, so that it is told about opens for reading (reported
on close), writes (close after writing), creates, deletes, renames and attribute changes (extended
attributes among them), each with the pid of the process that did it. A pid belongs to the job when
the kernel's proc connector saw it forked, directly or not, from the launcher after the watcher
started (the job is the launcher's only child while it runs); where the proc connector is not
available, the parent chain in ``/proc`` is walked instead (short-lived children may then be missed,
and the app says so).

The watcher runs in a thread of the launcher and never blocks the job: fanotify only notifies
(no permission events), the queue is unlimited, and the thread drains it as events come. A queue
overflow is counted and reported on the app as a capture gap. Noise — interpreters, installed
packages, shared libraries, caches, ``/proc``, ``/sys``, ``/dev`` — is dropped by path prefix; the
list is configurable.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import select
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

# <linux/fanotify.h>
FAN_CLOEXEC, FAN_NONBLOCK = 0x1, 0x2
FAN_CLASS_NOTIF = 0x0
FAN_UNLIMITED_QUEUE = 0x10
FAN_REPORT_FID, FAN_REPORT_DIR_FID, FAN_REPORT_NAME = 0x200, 0x400, 0x800
FAN_REPORT_DFID_NAME = FAN_REPORT_DIR_FID | FAN_REPORT_NAME
FAN_ATTRIB, FAN_CLOSE_WRITE, FAN_CLOSE_NOWRITE = 0x4, 0x8, 0x10
FAN_MOVED_FROM, FAN_MOVED_TO, FAN_CREATE, FAN_DELETE = 0x40, 0x80, 0x100, 0x200
FAN_Q_OVERFLOW = 0x4000
FAN_RENAME = 0x10000000
FAN_ONDIR = 0x40000000
FAN_MARK_ADD, FAN_MARK_FILESYSTEM = 0x1, 0x100
FAN_NOFD = -1
INFO_DFID_NAME, INFO_OLD_DFID_NAME, INFO_NEW_DFID_NAME = 2, 10, 12
O_PATH = getattr(os, "O_PATH", 0o10000000)

MASK = FAN_ATTRIB | FAN_CLOSE_WRITE | FAN_CLOSE_NOWRITE | FAN_CREATE | FAN_DELETE | FAN_RENAME
MARK_MASK = MASK | FAN_ONDIR  # directory renames are needed to keep the path cache true
_META = struct.Struct("=IBBHQii")  # event_len, vers, reserved, metadata_len, mask, fd, pid
_INFO = struct.Struct("=BBH")  # info_type, pad, len
_HANDLE = struct.Struct("=8sIi")  # fsid, handle_bytes, handle_type

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
    libc = ctypes.CDLL(None, use_errno=True)
    libc.fanotify_init.argtypes = [ctypes.c_uint, ctypes.c_uint]
    libc.fanotify_init.restype = ctypes.c_int
    libc.fanotify_mark.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64, ctypes.c_int, ctypes.c_char_p]
    libc.fanotify_mark.restype = ctypes.c_int
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


# -- the proc connector: fork and exit of every process, from the kernel, in order -----------------
_NLMSG = struct.Struct("=IHHII")
_CNMSG = struct.Struct("=IIIIHH")  # cb_id idx, val, seq, ack, len, flags
_PROC_EV = struct.Struct("=IIQ")  # what, cpu, timestamp_ns
NETLINK_CONNECTOR, CN_IDX_PROC, CN_VAL_PROC = 11, 1, 1
PROC_CN_MCAST_LISTEN = 1
PROC_EVENT_FORK, PROC_EVENT_EXIT = 0x1, 0x80000000
NLMSG_DONE = 3


def open_proc_connector() -> socket.socket:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
    try:
        sock.bind((os.getpid() ^ (threading.get_ident() & 0x7FFF0000), CN_IDX_PROC))
        payload = struct.pack("=I", PROC_CN_MCAST_LISTEN)
        cn = _CNMSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, len(payload), 0) + payload
        sock.send(_NLMSG.pack(_NLMSG.size + len(cn), NLMSG_DONE, 0, 0, os.getpid()) + cn)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def proc_events(data: bytes) -> Iterator[tuple[int, int, int]]:
    """(what, pid_a, pid_b) from one netlink datagram: fork → (parent tgid, child tgid), exit → (tgid, 0)."""
    offset = 0
    while offset + _NLMSG.size <= len(data):
        length = _NLMSG.unpack_from(data, offset)[0]
        if length < _NLMSG.size:
            return
        body = offset + _NLMSG.size + _CNMSG.size
        if body + _PROC_EV.size <= len(data):
            what = _PROC_EV.unpack_from(data, body)[0]
            ev = body + _PROC_EV.size
            if what == PROC_EVENT_FORK and ev + 16 <= len(data):
                _ppid, ptgid, _cpid, ctgid = struct.unpack_from("=iiii", data, ev)
                if ptgid != ctgid:  # a new process, not a new thread
                    yield what, ptgid, ctgid
            elif what == PROC_EVENT_EXIT and ev + 8 <= len(data):
                pid, tgid = struct.unpack_from("=ii", data, ev)
                if pid == tgid:
                    yield what, tgid, 0
        offset += (length + 3) & ~3


@dataclass
class Captured:
    """What the watcher saw of one job, as canonical raw events (dicts) plus its own accounting."""

    events: list[dict[str, object]] = field(default_factory=list)
    gaps: list[dict[str, object]] = field(default_factory=list)
    processes: int = 0
    overflows: int = 0
    seen: int = 0  # fanotify events read, the job's or not


class Watcher:
    """Watches the filesystems for one job: ``start()`` before the job is forked, ``stop()`` after it ended."""

    def __init__(self, app_id: str, user: str | None, *, noise: Iterable[str] | None = None,
                 mounts: list[Mount] | None = None) -> None:
        self.app_id, self.user = app_id, user
        self.noise = tuple(noise if noise is not None else default_noise())
        self.mounts = mounts if mounts is not None else real_mounts()
        self.out = Captured()
        self._libc = _libc()
        self._fd = -1
        self._mount_fds: dict[bytes, int] = {}
        self._dirs: dict[bytes, str] = {}
        self._proc: socket.socket | None = None
        self._launcher = os.getpid()
        self._tree: set[int] = set()
        self._foreign: set[int] = set()  # pids known not to be the job's (forgotten when a pid is reused)
        self._stop_r, self._stop_w = os.pipe()
        self._thread: threading.Thread | None = None
        self._seq = 0
        self._xattrs: dict[str, dict[str, str]] = {}
        self._xattr_ts: dict[str, int] = {}
        self._last: dict[str, str] = {}  # path → last op recorded, so re-reading a file is one read

    # -- set-up ---------------------------------------------------------------------------------
    def start(self) -> None:
        fd = self._libc.fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_UNLIMITED_QUEUE
                                      | FAN_REPORT_DFID_NAME, os.O_RDONLY | os.O_LARGEFILE)
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
        try:
            self._proc = open_proc_connector()
        except OSError as exc:
            self._proc = None
            self.out.gaps.append({"reason": f"no proc connector ({exc.strerror}): processes are attributed from "
                                            "/proc, so very short-lived children may be missed"})
        self._thread = threading.Thread(target=self._loop, name="fanotify-watcher", daemon=True)
        self._thread.start()

    def add_root(self, pid: int) -> None:
        self._tree.add(pid)

    def stop(self) -> Captured:
        """Drain what is left (the job has ended), then close everything."""
        if self._thread is not None:
            os.write(self._stop_w, b"x")
            self._thread.join()
        self.close()
        self.out.processes = len(self._tree)
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

    # -- the loop -------------------------------------------------------------------------------
    def _loop(self) -> None:
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        poller.register(self._stop_r, select.POLLIN)
        if self._proc is not None:
            poller.register(self._proc.fileno(), select.POLLIN)
        stopping = False
        while True:
            ready = {fd for fd, _ in poller.poll(None if not stopping else 0)}
            if self._stop_r in ready:
                stopping = True
                poller.unregister(self._stop_r)
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
            for what, a, b in proc_events(data):
                if what == PROC_EVENT_FORK:
                    self._foreign.discard(b)
                    # the launcher forks nothing but the job while the watcher runs
                    if a in self._tree or a == self._launcher:
                        self._tree.add(b)
                    elif b in self._tree:  # a pid of the job reused by another process
                        self._tree.discard(b)

    def _drain_fanotify(self) -> int:
        n = 0
        while True:
            try:
                data = os.read(self._fd, 1 << 18)
            except BlockingIOError:
                return n
            except OSError:
                return n
            if not data:
                return n
            n += self._parse(data)

    def _parse(self, data: bytes) -> int:
        offset, count = 0, 0
        while offset + _META.size <= len(data):
            event_len, _vers, _res, meta_len, mask, fd, pid = _META.unpack_from(data, offset)
            if event_len < _META.size:
                break
            count += 1
            self.out.seen += 1
            if fd != FAN_NOFD:
                os.close(fd)
            if mask & FAN_Q_OVERFLOW:
                self.out.overflows += 1
            elif mask & FAN_ONDIR:
                if mask & (FAN_RENAME | FAN_ATTRIB):  # not listings (close), nor mkdir / rmdir
                    records = self._records(data, offset + meta_len, offset + event_len)
                    if mask & FAN_RENAME:
                        self._dirs.clear()  # a renamed directory changes the paths below it
                    if self._ours(pid):
                        self._directory(mask, pid, records)
            elif self._ours(pid):
                self._event(mask, pid, self._records(data, offset + meta_len, offset + event_len))
            offset += event_len
        return count

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
                    self._tree.update(chain)
                    return True
                current = parent
            return False  # not cached: a pid seen before the job's fork might still become its
        self._foreign.add(pid)
        return False

    def _records(self, data: bytes, start: int, end: int) -> dict[int, str]:
        out: dict[int, str] = {}
        while start + _INFO.size <= end:
            info_type, _pad, length = _INFO.unpack_from(data, start)
            if length == 0:
                break
            if info_type in (INFO_DFID_NAME, INFO_OLD_DFID_NAME, INFO_NEW_DFID_NAME):
                fsid, nbytes, _htype = _HANDLE.unpack_from(data, start + _INFO.size)
                handle_at = start + _INFO.size + _HANDLE.size
                handle = data[start + _INFO.size + 8: handle_at + nbytes]  # struct file_handle, whole
                name = data[handle_at + nbytes: start + length].split(b"\0", 1)[0]
                directory = self._resolve(fsid, handle)
                if directory is not None:
                    out[info_type] = directory if name in (b"", b".") else os.path.join(directory, os.fsdecode(name))
            start += length
        return out

    def _resolve(self, fsid: bytes, handle: bytes) -> str | None:
        key = fsid + handle
        known = self._dirs.get(key)
        if known is not None:
            return known
        mount_fd = self._mount_fds.get(fsid)
        if mount_fd is None:
            return None
        fd = self._libc.open_by_handle_at(mount_fd, handle, O_PATH | os.O_CLOEXEC)
        if fd < 0:
            return None  # the directory is gone already
        try:
            path = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return None
        finally:
            os.close(fd)
        if path.endswith(" (deleted)"):
            return None
        if len(self._dirs) > 100_000:
            self._dirs.clear()
        self._dirs[key] = path
        return path

    def _noise(self, path: str) -> bool:
        return path.startswith(self.noise) or any(p in path for p in NOISE_PARTS) or bool(NOISE_SUFFIX.search(path))

    def _rename(self, records: dict[int, str], pid: int, directory: bool = False) -> None:
        attrs: dict[str, object] = {"directory": True} if directory else {}
        src, dst = records.get(INFO_OLD_DFID_NAME), records.get(INFO_NEW_DFID_NAME)
        src = None if src is None or self._noise(src) else src
        dst = None if dst is None or self._noise(dst) else dst
        if src and dst:
            self._emit("rename", src, pid, dst=dst, attrs=attrs)
        elif dst:  # moved in from a place nobody watches
            self._emit("create", dst, pid, attrs=attrs)
        elif src:
            self._emit("delete", src, pid, attrs=attrs)

    def _directory(self, mask: int, pid: int, records: dict[int, str]) -> None:
        if mask & FAN_RENAME:
            self._rename(records, pid, directory=True)
            return
        path = records.get(INFO_DFID_NAME)  # making or removing an (empty) directory is not lineage
        if path is not None and mask & FAN_ATTRIB and not self._noise(path + "/"):
            self._attrib(path, pid)

    def _event(self, mask: int, pid: int, records: dict[int, str]) -> None:
        if mask & FAN_RENAME:
            self._rename(records, pid)
            return
        path = records.get(INFO_DFID_NAME)
        if path is not None and "/__pycache__/" in path and path.endswith(".pyc"):
            if not mask & FAN_CLOSE_NOWRITE:
                return  # the interpreter caching bytecode
            head, _, name = path.rpartition("/__pycache__/")  # reading cached bytecode is reading the code
            path = f"{head}/{name.split('.', 1)[0]}.py"
        if path is None or self._noise(path):
            return
        if mask & FAN_CREATE:
            self._emit("create", path, pid)
        if mask & FAN_CLOSE_WRITE:
            self._emit("write", path, pid)
        if mask & FAN_CLOSE_NOWRITE:
            self._emit("read", path, pid)
        if mask & FAN_ATTRIB:
            self._attrib(path, pid)
        if mask & FAN_DELETE:
            self._xattrs.pop(path, None)
            self._emit("delete", path, pid)

    def _attrib(self, path: str, pid: int) -> None:
        """An attribute changed: compare the file's ``user.prov.*`` extended attributes with the last seen."""
        try:
            names = [n for n in os.listxattr(path) if n.startswith("user.prov.")]
            now = {n: os.getxattr(path, n).decode("utf-8", "replace") for n in names}
        except OSError:
            return
        before = self._xattrs.get(path, {})
        # a later change of the same file's tags gets a later time, even within one millisecond
        ts = max(time.time_ns() // 1_000_000, self._xattr_ts.get(path, 0) + 1)
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

    def _emit(self, op: str, path: str, pid: int, *, dst: str | None = None, ts: int | None = None,
              attrs: dict[str, object] | None = None) -> None:
        if op == "read" and self._last.get(path) == "read":
            return
        self._last[path] = op
        if dst is not None:
            self._last.pop(dst, None)
        self._seq += 1
        event: dict[str, object] = {"source": "fanotify", "kind": "file", "op": op,
                                    "ts": ts if ts is not None else time.time_ns() // 1_000_000,
                                    "app_id": self.app_id, "uri": path, "attrs": {"pid": pid, **(attrs or {})},
                                    "event_id": f"fanotify:{self.app_id}:{self._seq}"}
        if dst is not None:
            event["dst"] = dst
        if self.user:
            event["user"] = self.user
        self.out.events.append(event)


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])
