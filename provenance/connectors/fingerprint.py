"""Content identity of the files a run touched: a cheap fingerprint at each event, a hash at the end.

A capture stamps each read, write, create and rename target with ``attrs.fingerprint`` =
``{"size", "mtime_ns", "inode", "dev"}`` from one ``stat`` of the file as it handles the event
(nothing when the file is already gone). Hashing every file as it is touched would cost the job
its I/O twice; instead, when the job has ended, :func:`attach_hashes` hashes each touched path
whose current fingerprint still equals the one an event recorded, and puts ``attrs.hash`` =
``"blake3:<32 hex>"`` (BLAKE3, 16-byte digest: about four times BLAKE2b's speed here) on those
events. Otherwise the event says why it has none in ``attrs.hash_skipped``:

- ``"changed"``: the file changed (or went away) after the event, so its bytes at the event are
  unknown; a later event of the same run names the content that replaced it. A file that was only
  moved keeps its fingerprint (same device, inode, size and mtime): when a path the run touched
  still holds that fingerprint, the event gets that file's hash;
- ``"size"``: larger than the limit (256 MiB by default): the fingerprint stands alone;
- ``"path"``: under ``/proc``, ``/sys`` or ``/dev`` (``/dev/shm`` aside: its files are real), or not a
  regular file: never opened;
- ``"unreadable"``: the launcher could not open it (the job runs as the same user, so this is rare).

A write whose end the capture cannot see (the audit hook knows only when a file was opened,
``attrs.ends_unknown``) gets its fingerprint here, from the content the run left, with
``attrs.fingerprint_taken: "run_end"``.

Hashes are cached in ``HOME/hashes.db`` (SQLite) by ``(dev, inode, size, mtime_ns)``, so a file
that does not change is hashed once, ever. A row is trusted only while the file's ctime is the one
recorded with it too: a tool can put an old mtime back on new content (``touch -d``, ``rsync -t``,
``tar``), but not an old ctime.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blake3

HASH_LIMIT = 256 << 20
_CHUNK = 1 << 20
_NEVER_READ = ("/proc/", "/sys/", "/dev/")
_SHARED_MEMORY = "/dev/shm/"  # a tmpfs of real files, under /dev
HASHED_OPS = frozenset({"read", "write", "create", "rename"})

Fingerprint = dict[str, int]


def _never_read(path: str) -> bool:
    return path.startswith(_NEVER_READ) and not path.startswith(_SHARED_MEMORY)


def fingerprint_of(st: os.stat_result) -> Fingerprint:
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino, "dev": st.st_dev}


def stat_fingerprint(path: str) -> Fingerprint | None:
    """The fingerprint of a regular file, or None (gone, or not a regular file)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return fingerprint_of(st) if stat.S_ISREG(st.st_mode) else None


def _current(path: str) -> Fingerprint | None:
    """The fingerprint now; ``{}`` for something there that is not a regular file (never read)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return fingerprint_of(st) if stat.S_ISREG(st.st_mode) else {}


ALGORITHM = "blake3"


def _digest(h: Any) -> str:
    return f"{ALGORITHM}:{h.hexdigest(length=16)}"


def hash_file(path: str, expected: Fingerprint) -> tuple[str | None, str | None, int]:
    """(hash, reason skipped, ctime_ns) of ``path``, hashed only if it still has the ``expected``
    fingerprint before and after it was read."""
    if _never_read(path):
        return None, "path", 0
    try:
        # O_NONBLOCK: a FIFO put in the file's place must not block the launcher; O_NOFOLLOW: the
        # path was resolved when it was recorded, a link put there since is not followed
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None, ("changed" if stat_fingerprint(path) != expected else "unreadable"), 0
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            return None, "path", 0
        if fingerprint_of(before) != expected:
            return None, "changed", 0
        h = blake3.blake3()
        buf = bytearray(_CHUNK)
        view = memoryview(buf)
        while n := os.readv(fd, [buf]):
            h.update(view[:n])  # blake3 lets other threads run while it hashes a large buffer
        after = os.fstat(fd)
    except OSError:
        return None, "unreadable", 0
    finally:
        os.close(fd)
    if fingerprint_of(after) != expected or after.st_ctime_ns != before.st_ctime_ns:
        return None, "changed", 0  # written to while it was read
    return _digest(h), None, before.st_ctime_ns


class HashCache:
    """``(dev, inode, size, mtime_ns)`` → hash, in SQLite. Never fails a run: without the file, it
    is an empty cache."""

    def __init__(self, path: Path) -> None:
        self.db: sqlite3.Connection | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, timeout=30)
            db.execute("PRAGMA journal_mode=WAL")  # runs that end at once do not wait on each other's reads
            db.execute("CREATE TABLE IF NOT EXISTS hashes (dev INTEGER, inode INTEGER, size INTEGER, "
                       "mtime_ns INTEGER, ctime_ns INTEGER, hash TEXT, "
                       "PRIMARY KEY (dev, inode, size, mtime_ns))")
            self.db = db
        except sqlite3.Error:
            self.db = None

    def get(self, fp: Fingerprint, ctime_ns: int) -> str | None:
        if self.db is None:
            return None
        try:
            row = self.db.execute("SELECT hash FROM hashes WHERE dev=? AND inode=? AND size=? AND mtime_ns=? "
                                  "AND ctime_ns=?", (fp["dev"], fp["inode"], fp["size"], fp["mtime_ns"],
                                                     ctime_ns)).fetchone()
        except sqlite3.Error:
            return None
        # a hash of another algorithm (a cache written by an earlier build) is no hash here
        return str(row[0]) if row and str(row[0]).startswith(ALGORITHM + ":") else None

    def put(self, rows: Iterable[tuple[Fingerprint, int, str]]) -> None:
        if self.db is None:
            return
        try:
            with self.db:
                self.db.executemany("INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?, ?, ?)",
                                    [(fp["dev"], fp["inode"], fp["size"], fp["mtime_ns"], ctime, h)
                                     for fp, ctime, h in rows])
        except sqlite3.Error:
            pass

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None


@dataclass
class HashStats:
    hashed: int = 0  # files read and hashed by this run
    cached: int = 0  # files whose hash came from the cache
    skipped: int = 0  # events left without a hash
    bytes_hashed: int = 0


def _well_formed(fp: object) -> bool:
    # spool lines come from the job's own processes: a malformed one must not stop the hashing
    return isinstance(fp, dict) and all(type(fp.get(k)) is int for k in ("size", "mtime_ns", "inode", "dev"))


def _fp_key(fp: Fingerprint) -> tuple[int, ...]:
    return (fp["dev"], fp["inode"], fp["size"], fp["mtime_ns"])


def _subject(event: dict[str, Any]) -> str | None:
    """The path whose content the event names: a rename names its target."""
    if event.get("kind") != "file" or event.get("op") not in HASHED_OPS:
        return None
    path = event.get("dst") if event["op"] == "rename" else event.get("uri")
    return path if isinstance(path, str) and path.startswith("/") else None


def attach_hashes(events: list[dict[str, Any]], cache_path: Path, *, limit: int = HASH_LIMIT,
                  threads: int = 2) -> HashStats:
    """Put ``attrs.hash`` (or ``attrs.hash_skipped``) on the events of a run that has ended; see the
    module docstring. Events are changed in place."""
    stats = HashStats()
    todo: list[tuple[dict[str, Any], str, Fingerprint]] = []
    moved: list[tuple[dict[str, Any], Fingerprint]] = []  # changed at their path: perhaps renamed since
    current: dict[str, Fingerprint | None] = {}
    for event in events:
        path = _subject(event)
        if path is None:
            continue
        attrs = event.setdefault("attrs", {})
        if path not in current:
            current[path] = None if _never_read(path) else _current(path)
        fp = attrs.get("fingerprint")
        if fp is None and attrs.get("ends_unknown") and current[path]:
            # the end of the write is unknown: its content is the one the run left
            fp = attrs["fingerprint"] = dict(current[path] or {})
            attrs["fingerprint_taken"] = "run_end"
        if not _well_formed(fp):
            continue  # gone before the event was handled: nothing to identify
        if _never_read(path) or current[path] == {}:
            attrs["hash_skipped"] = "path"
        elif current[path] != fp:
            attrs["hash_skipped"] = "changed"
            moved.append((attrs, fp))
        elif int(fp.get("size", 0)) > limit:
            attrs["hash_skipped"] = "size"
        else:
            todo.append((attrs, path, fp))
    if todo:
        _hash_all(todo, cache_path, threads, stats)
    # the same fingerprint elsewhere is the same file, moved (a rename keeps device, inode, size and mtime)
    by_fingerprint = {_fp_key(fp): attrs["hash"] for attrs, _, fp in todo if "hash" in attrs}
    for attrs, fp in moved:
        found = by_fingerprint.get(_fp_key(fp))
        if found is not None and int(fp["size"]) <= limit:
            attrs["hash"] = found
            del attrs["hash_skipped"]
    stats.skipped = sum(1 for e in events if "hash_skipped" in e.get("attrs", {}))
    return stats


def _hash_all(todo: list[tuple[dict[str, Any], str, Fingerprint]], cache_path: Path, threads: int,
              stats: HashStats) -> None:
    cache = HashCache(cache_path)
    try:
        # one hash per distinct content: a file written, then read back by the run is read once here
        wanted: dict[tuple[str, tuple[int, ...]], Fingerprint] = {}
        for _, path, fp in todo:
            wanted.setdefault((path, _fp_key(fp)), fp)
        results: dict[tuple[str, tuple[int, ...]], tuple[str | None, str | None]] = {}
        misses: list[tuple[tuple[str, tuple[int, ...]], Fingerprint]] = []
        for key, fp in wanted.items():
            try:
                ctime = os.stat(key[0]).st_ctime_ns
            except OSError:
                results[key] = (None, "changed")
                continue
            hit = cache.get(fp, ctime)
            if hit is not None:
                results[key] = (hit, None)
                stats.cached += 1
            else:
                misses.append((key, fp))
        new_rows: list[tuple[Fingerprint, int, str]] = []
        with ThreadPoolExecutor(max_workers=max(1, min(threads, len(misses) or 1))) as pool:
            for (key, fp), (digest, why, ctime) in zip(misses, pool.map(lambda m: hash_file(m[0][0], m[1]), misses),
                                                      strict=True):
                results[key] = (digest, why)
                if digest is not None:
                    new_rows.append((fp, ctime, digest))
                    stats.hashed += 1
                    stats.bytes_hashed += fp["size"]
        cache.put(new_rows)
    finally:
        cache.close()
    for attrs, path, fp in todo:
        digest, why = results[(path, _fp_key(fp))]
        if digest is not None:
            attrs["hash"] = digest
        else:
            attrs["hash_skipped"] = why or "unreadable"
