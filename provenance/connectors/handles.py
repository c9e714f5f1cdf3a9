"""Directory file handle → path, kept true to the order of the fanotify queue.

fanotify names a file by its directory's file handle and its name. The watcher reads the queue a
little after the events happened, and by then a directory may be gone (``rm -rf``: its handle no
longer opens) or renamed (``mv out.tmp out``: its handle opens at the *new* path, so an event from
before the rename would be put under the wrong name, depending on how far behind the watcher was).
So paths come from a table that is filled before the job starts and then changed only by the
events themselves, in queue order:

- at start, the directories under the job's working directory (and the directory's ancestors) are
  entered with ``name_to_handle_at`` (bounded, noise skipped);
- a directory the job creates is entered from its create event, which carries the new directory's
  own handle (``FAN_REPORT_TARGET_FID``) — no lookup, so no race with what the job did next;
- a directory rename rewrites every entry at or under the old path;
- only a directory in none of these (made before the run, outside the working directory) is looked
  up with ``open_by_handle_at`` — that path is the current one, not necessarily the one at the event.
"""

from __future__ import annotations

import ctypes
import os
import struct
import time
from collections.abc import Callable

AT_FDCWD = -100
AT_HANDLE_FID = 0x200  # Linux 6.5: a handle to identify, as fanotify reports it (same bytes, where both exist)
MAX_HANDLE_SZ = 128
O_PATH = getattr(os, "O_PATH", 0o10000000)
PREFILL_DIRS = 20_000
PREFILL_SECONDS = 2.0
TABLE_LIMIT = 200_000

# never the job's data, and often huge: not walked at start (their handles are still looked up on demand)
SKIP_DIR_NAMES = frozenset({".git", ".hg", ".svn", "node_modules", "__pycache__", "site-packages", "dist-packages",
                            ".venv", "venv", ".tox", ".nox", ".mypy_cache", ".ruff_cache", ".pytest_cache",
                            ".cache", ".ipynb_checkpoints"})


class DirectoryHandles:
    """``fsid + struct file_handle`` → path. ``libc`` needs ``open_by_handle_at``, ``name_to_handle_at``
    and ``statfs``; ``mount_fds`` maps an fsid to an open directory of that filesystem."""

    def __init__(self, libc: ctypes.CDLL, mount_fds: dict[bytes, int],
                 fsid_of: Callable[[str], bytes | None]) -> None:
        self.libc = libc
        self.mount_fds = mount_fds
        self.fsid_of = fsid_of
        self.paths: dict[bytes, str] = {}
        self._mount_fsid: dict[int, bytes | None] = {}
        self._fid_flag = AT_HANDLE_FID
        libc.name_to_handle_at.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p,
                                           ctypes.POINTER(ctypes.c_int), ctypes.c_int]
        libc.name_to_handle_at.restype = ctypes.c_int

    # -- entering directories -------------------------------------------------------------------
    def key_of(self, path: str) -> bytes | None:
        """The key fanotify would report for the directory at ``path`` (its final component is not followed)."""
        buf = ctypes.create_string_buffer(8 + MAX_HANDLE_SZ)
        mount_id = ctypes.c_int()
        encoded = os.fsencode(path)
        for _ in range(2):
            struct.pack_into("=I", buf, 0, MAX_HANDLE_SZ)
            if self.libc.name_to_handle_at(AT_FDCWD, encoded, buf, ctypes.byref(mount_id), self._fid_flag) == 0:
                break
            if ctypes.get_errno() == 22 and self._fid_flag:  # EINVAL: a kernel before AT_HANDLE_FID
                self._fid_flag = 0
                continue
            return None
        else:
            return None
        nbytes = struct.unpack_from("=I", buf, 0)[0]
        fsid = self._mount_fsid.get(mount_id.value)
        if fsid is None and mount_id.value not in self._mount_fsid:
            fsid = self._mount_fsid[mount_id.value] = self.fsid_of(path)
        return None if fsid is None else fsid + buf.raw[:8 + nbytes]

    def enter(self, key: bytes, path: str) -> None:
        if len(self.paths) < TABLE_LIMIT or key in self.paths:
            self.paths[key] = path

    def enter_path(self, path: str) -> bool:
        key = self.key_of(path)
        if key is None:
            return False
        self.enter(key, path)
        return True

    def prefill(self, root: str, *, limit: int = PREFILL_DIRS, seconds: float = PREFILL_SECONDS,
                skip: Callable[[str], bool] = lambda _p: False) -> tuple[int, bool]:
        """Enter ``root``, its ancestors, and the directories beneath it (breadth first, so a bound cuts
        the deepest first). Returns (entered, complete)."""
        entered = 0
        head = root
        while True:
            entered += self.enter_path(head)
            parent = os.path.dirname(head)
            if parent == head:
                break
            head = parent
        deadline = time.monotonic() + seconds
        queue = [root]
        while queue:
            level, queue = queue, []
            for directory in level:
                try:
                    with os.scandir(directory) as it:
                        subdirs = [e.path for e in it if e.is_dir(follow_symlinks=False)
                                   and e.name not in SKIP_DIR_NAMES]
                except OSError:
                    continue
                for sub in sorted(subdirs):
                    if skip(sub + "/"):
                        continue
                    if entered >= limit or time.monotonic() > deadline:
                        return entered, False
                    entered += self.enter_path(sub)
                    queue.append(sub)
        return entered, True

    # -- keeping it true ------------------------------------------------------------------------
    def renamed(self, src: str, dst: str, key: bytes | None = None) -> None:
        """A directory moved from ``src`` to ``dst``: so did every directory beneath it."""
        prefix = src + "/"
        for k, path in self.paths.items():
            if path == src:
                self.paths[k] = dst
            elif path.startswith(prefix):
                self.paths[k] = dst + path[len(src):]
        if key is not None:
            self.enter(key, dst)

    def removed(self, key: bytes) -> None:
        self.paths.pop(key, None)

    # -- looking up -----------------------------------------------------------------------------
    def resolve(self, fsid: bytes, handle: bytes) -> str | None:
        """The path of a directory reported as ``fsid`` + ``handle`` (struct file_handle, whole)."""
        key = fsid + handle
        known = self.paths.get(key)
        if known is not None:
            return known
        mount_fd = self.mount_fds.get(fsid)
        if mount_fd is None:
            return None
        fd = self.libc.open_by_handle_at(mount_fd, handle, O_PATH | os.O_CLOEXEC)
        if fd < 0:
            return None  # the directory is gone, and was never entered
        try:
            path = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return None
        finally:
            os.close(fd)
        if path.endswith(" (deleted)"):
            return None
        self.enter(key, path)
        return path
