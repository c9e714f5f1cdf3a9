"""Injected into jobs started by ``provenance run --capture audit-hook`` (through PYTHONPATH).

Records the job's own file operations as canonical events, one JSON line each, in a spool file per
process: ``$PROVENANCE_SPOOL/<pid>.jsonl``. It covers open (with the mode), remove, rename and
extended attributes; shutil's operations arrive through these. Making and removing directories is
not lineage (an empty directory holds no data); renaming one is, as it moves what it holds: it
becomes one rename per file beneath it. The launcher collects the spool after the job. The last
line of a complete spool is an end marker. A spool without one (the process was killed, or called
os._exit) is reported on the app as a capture gap.

Paths relative to a directory descriptor (``dir_fd``, ``src_dir_fd``, ``dst_dir_fd``, as
``shutil.rmtree`` uses them) are resolved through ``/proc/self/fd``. The ``open`` audit event of
``os.open`` does not carry its ``dir_fd``, so ``os.open`` is wrapped to tell the hook; a relative
``os.open`` the wrapper did not see (a reference taken before the hook was installed) is a capture
gap, not a guess. A builtin ``open`` of a relative path is held until the next file operation of
its thread, so that an ``opener`` that opens relative to a ``dir_fd`` can correct it.

The hook sees only Python processes that load it. When a process starts another program
(``subprocess``, ``os.exec*``, ``os.posix_spawn``, ``os.system``) that is not such a Python, the
program is noted, and the launcher reports it as a capture gap (``kind: "unseen_processes"``).

File events (``source: "audit-hook"``) carry in ``attrs``:

- ``pid`` (int) and ``proc`` (str, ``"<pid>.<starttime>"``, see ``provenance.connectors.processes``);
- ``opened_ts`` (int, ms) on ``read``, ``write`` and ``create``: when the file was opened, which is
  also ``ts``; the hook never sees a close, so a ``write`` or ``create`` through ``open`` has
  ``ends_unknown: true`` (its end is the process's end at the latest). Files that pyarrow writes
  natively are recorded after the write returned: their ``ts`` is its end, and ends are known;
- ``fingerprint`` (``{"size", "mtime_ns", "inode", "dev"}``) on ``read`` (a ``stat`` as the file is
  opened) and ``rename`` (the source's, just before it moves: the target's content); for writes
  and creates whose end is unknown the launcher takes it from the content the run left;
- ``via_directory_rename: true`` on the renames a directory rename stands for;
- ``mode`` (the open mode), ``code: true`` (the job's own code, read by the interpreter), ``via:
  "pyarrow"``, and ``name``/``value`` on extended-attribute events.

Each process's spool opens with a ``_proc`` record (its key, parent's key, program, arguments,
start) and its end marker holds its end time: the launcher lists the processes from them.

Stdlib only, and it never raises into the job: a capture failure must not kill the job.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import stat
import sys
import time
from _thread import get_ident
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType

_APP = os.environ.get("PROVENANCE_APP_ID", "")
_USER = os.environ.get("PROVENANCE_USER") or None
_SPOOL = os.environ.get("PROVENANCE_SPOOL", "")
_FILES = os.environ.get("PROVENANCE_HOOK_FILES", "1") != "0"  # off when fanotify sees the file I/O
_HOOK_DIR = os.path.dirname(os.path.abspath(__file__))
_IMPORT_FILES = ("<frozen importlib._bootstrap_external>", "<frozen importlib._bootstrap>", "<frozen zipimport>")
_SKIP_PREFIXES = tuple(
    sorted({p for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix) if p}
           | {"/proc/", "/sys/"} | ({_SPOOL} if _SPOOL else set())
           | {p for p in os.environ.get("PROVENANCE_NOISE", "").split(os.pathsep) if p})
)
_SKIP_PARTS_RE = re.compile("/__pycache__/|/site-packages/|/dist-packages/")
_WATCHED = ("open", "os.", "shutil.", "subprocess.")
_FLUSH_EVERY = 256
_DIRECTORY_RENAME_FILES = 10_000
_ARGV, _ARG = 20, 200  # as provenance.connectors.processes bounds them


def _now() -> int:
    return time.time_ns() // 1_000_000


def _starttime(pid: int | str) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _key(pid: int, start: int | None) -> str:
    return f"{pid}.{start}" if start is not None else str(pid)


class _Spool:
    """The process's spool file, created at its first record (a process with none leaves no file)."""

    def __init__(self) -> None:
        self.pid = -1
        self.proc = ""
        self.parent: str | None = None
        self.image = ""
        self.started = 0
        self.seq = 0
        self.buf: list[str] = []
        self.file: TextIO | None = None
        self.failed = False

    def open(self) -> None:
        """This process (a fork, or a new program image) starts recording."""
        self.pid, self.seq, self.buf, self.file, self.failed = os.getpid(), 0, [], None, False
        self.started = _now()
        self.proc = _key(self.pid, _starttime("self"))
        ppid = os.getppid()
        self.parent = _key(ppid, _starttime(ppid)) if ppid > 1 else None
        # the pid and its start time stay the same across exec: the image tells this program's event ids apart
        self.image = f"{time.monotonic_ns():x}"

    def write(self, record: dict[str, object]) -> None:
        """A record that is not a file event (an end marker, a table note, a program the hook cannot see)."""
        if self._ready():
            self.buf.append(json.dumps(record))

    def write_event(self, head: str, tail: str) -> None:
        """A file event, as the JSON text around its event id (built by hand: this is the hot path)."""
        if not self._ready():
            return
        self.seq += 1
        self.buf.append(f'{head}"event_id":"audit-hook:{_APP}:{self.proc}:{self.image}:{self.seq}"{tail}')
        if len(self.buf) >= _FLUSH_EVERY:
            self.flush()

    def _ready(self) -> bool:
        if self.file is None:
            if self.failed:
                return False
            try:
                self.file = open(os.path.join(_SPOOL, f"{self.pid}.jsonl"), "a", encoding="utf-8")
            except OSError:
                self.failed = True
                return False
            try:
                exe = os.path.basename(os.readlink("/proc/self/exe"))
            except OSError:
                exe = os.path.basename(sys.executable)
            argv = [a[:_ARG] for a in (getattr(sys, "orig_argv", None) or sys.argv)[:_ARGV]]
            self.buf.insert(0, json.dumps({"_proc": {"proc": self.proc, "pid": self.pid, "parent": self.parent,
                                                     "exe": exe or None, "argv": argv, "start_ts": self.started}}))
        return True

    def flush(self) -> None:
        if self.file is None or not self.buf:
            return
        try:
            self.file.write("\n".join(self.buf) + "\n")
            self.file.flush()
        except (OSError, ValueError):
            pass
        self.buf = []

    def close(self) -> None:
        _release_all()
        if self.file is None:
            return
        self.buf.append(json.dumps({"_end": True, "pid": self.pid, "proc": self.proc, "events": self.seq,
                                    "end_ts": _now()}))
        self.flush()
        try:
            self.file.close()
        except OSError:
            pass
        self.file = None


_spool = _Spool()
_code_seen: set[str] = set()
_busy = False  # our own file writes raise audit events too
_opening: dict[int, int] = {}  # thread → dir_fd of the os.open it is in (-1: none), set by _os_open
_held: dict[int, tuple[object, tuple[Any, ...]]] = {}  # thread → (path given, _emit arguments) of a relative open
_noted: set[str] = set()


def _source_of(path: str) -> str:
    """``pkg/__pycache__/mod.cpython-311.pyc`` → ``pkg/mod.py``: reading cached bytecode is reading the code."""
    head, _, name = path.rpartition("/__pycache__/")
    if not head or not name.endswith(".pyc"):
        return path
    return f"{head}/{name.split('.', 1)[0]}.py"


def _text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    try:
        return os.fsdecode(os.fspath(value))  # type: ignore[call-overload]
    except TypeError:
        return None


def _fd_path(fd: int) -> str | None:
    """The path an open descriptor names now (None for a pipe, a socket, or a removed directory)."""
    try:
        path = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    return path if path.startswith("/") and not path.endswith(" (deleted)") else None


def _gap(op: str, name: object, why: str) -> None:
    _spool.write({"_gap": {"reason": f"a {op} of {_text(name)!r}: {why}", "kind": "unresolved_path", "op": op,
                           "name": _text(name)}})


def _abs(value: object, dir_fd: int = -1, op: str = "") -> str | None:
    """The absolute path a call names, relative to ``dir_fd`` when it has one (-1: the working
    directory); None for a descriptor, and a capture gap when the directory cannot be named."""
    if isinstance(value, int):
        return None  # an fd: its path was recorded when it was opened
    path = _text(value)
    if path is None:
        return None
    if path[:1] != "/" and dir_fd >= 0:
        base = _fd_path(dir_fd)
        if base is None:
            _gap(op, path, "the directory it is relative to (dir_fd) has no path")
            return None
        path = os.path.join(base, path)
    if path[:1] != "/" or "/." in path or "//" in path:
        path = os.path.abspath(path)
    return path


def _keep(path: str | None) -> str | None:
    """The path as an event names it, or None for what is never the job's data."""
    if path is None:
        return None
    if "/__pycache__/" in path:
        path = _source_of(path)
    if path.startswith("/dev/") and not path.startswith("/dev/shm/"):
        return None  # devices; /dev/shm is a file system like any other
    if path.startswith(_SKIP_PREFIXES) or _SKIP_PARTS_RE.search(path) or path.endswith(".pyc"):
        return None
    return path


def _path(value: object, dir_fd: int = -1, op: str = "") -> str | None:
    return _keep(_abs(value, dir_fd, op))


def _fp(path: str) -> str | None:
    """The fingerprint of a regular file, as JSON; None when it is gone or not a regular file."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return f'{{"size":{st.st_size},"mtime_ns":{st.st_mtime_ns},"inode":{st.st_ino},"dev":{st.st_dev}}}'


_xattr_ts: dict[str, int] = {}
_HEAD = ('{"source":"audit-hook","kind":"file","app_id":' + json.dumps(_APP) + ","
         + (f'"user":{json.dumps(_USER)},' if _USER else ""))


def _q(text: str) -> str:
    """A JSON string literal, quickly for the common plain path."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return json.dumps(text)


def _emit(op: str, path: str, dst: str | None = None, mode: str | None = None, fp: str | None = None,
          ts: int | None = None, opened: int | None = None, ends_unknown: bool = False, **more: object) -> None:
    if ts is None:
        ts = _now()
    if op.startswith("xattr"):  # a later change of a file's tags gets a later time, even within a millisecond
        ts = _xattr_ts[path] = max(ts, _xattr_ts.get(path, 0) + 1)
    attrs = f'{{"pid":{_spool.pid},"proc":"{_spool.proc}"'
    if mode is not None:
        attrs += f',"mode":{_q(mode)}'
    if op in ("read", "write", "create"):
        attrs += f',"opened_ts":{opened if opened is not None else ts}'
    if ends_unknown:
        attrs += ',"ends_unknown":true'
    if fp is not None:
        attrs += f',"fingerprint":{fp}'
    if more:
        attrs += "," + json.dumps(more)[1:-1]
    where = f'"uri":{_q(path)},' + (f'"dst":{_q(dst)},' if dst is not None else "")
    _spool.write_event(f'{_HEAD}"op":"{op}","ts":{ts},{where}"attrs":{attrs}}},', "}")


def _release(held: tuple[object, tuple[Any, ...]]) -> None:
    op, path, mode, fp, ts, ends_unknown = held[1]
    _emit(op, path, mode=mode, fp=fp, ts=ts, ends_unknown=ends_unknown)


def _release_all() -> None:
    while _held:
        try:
            _release(_held.popitem()[1])
        except KeyError:  # another thread took it
            break


def _open(args: tuple[object, ...]) -> None:
    raw, mode = args[0], args[1]
    if mode is None:  # os.open: flags say what it does, and only the wrapper knows its dir_fd
        _os_opened(raw, int(args[2] or 0))  # type: ignore[call-overload]
        return
    path = _path(raw)
    if path is None:
        return
    try:
        caller = sys._getframe(2).f_code.co_filename
    except ValueError:
        caller = ""  # no Python frame: the interpreter reading the main script
    if caller in _IMPORT_FILES or not caller:  # the job's own code (its installed libraries are noise)
        if path not in _code_seen:
            fp = _fp(path)
            if fp is not None:
                _code_seen.add(path)
                _emit("read", path, fp=fp, code=True)
        return
    text = str(mode)
    writes = "w" in text or "a" in text or "x" in text or "+" in text
    fp = None
    if writes:
        creates = "x" in text or (("w" in text or "a" in text) and not os.path.exists(path))
    else:
        fp = _fp(path)
        if fp is None:
            return  # a directory, or a read that will fail (the hook runs before the open)
        creates = False
    emit = ("create" if creates else "write" if writes else "read", path, text, fp, _now(), writes)
    name = _text(raw)
    if name is not None and name[:1] != "/":
        _held[get_ident()] = (raw, emit)  # an opener may still say it is relative to another directory
    else:
        _release((raw, emit))


def _os_opened(raw: object, flags: int) -> None:
    dir_fd = _opening.get(get_ident())
    name = _text(raw)
    writes = bool(flags & (os.O_WRONLY | os.O_RDWR))
    op = "create" if flags & os.O_CREAT else "write" if writes else "read"
    if dir_fd is None and name is not None and name[:1] != "/":
        _gap(op, name, "os.open through a reference the hook did not wrap, so its dir_fd is unknown")
        return
    path = _path(raw, -1 if dir_fd is None else dir_fd, op)
    if path is None:
        return
    fp = None
    if writes:
        creates = bool(flags & os.O_CREAT) and not os.path.exists(path)
    else:
        fp = _fp(path)
        if fp is None:
            return  # a directory (rmtree opens those relative to their parent), or an open that will fail
        creates = False
    _emit("create" if creates else "write" if writes else "read", path, mode=None, fp=fp, ends_unknown=writes)


def _os_open(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
    """``os.open``, telling the hook its ``dir_fd`` (the audit event leaves it out)."""
    thread = get_ident()
    _opening[thread] = -1 if dir_fd is None else dir_fd
    try:
        return _real_os_open(path, flags, mode, dir_fd=dir_fd)
    finally:
        _opening.pop(thread, None)


_real_os_open = os.open
_os_open.__doc__ = _real_os_open.__doc__
_os_open.__wrapped__ = _real_os_open  # type: ignore[attr-defined]


def _moved_directory(src: str, dst: str) -> None:
    """A directory is about to be renamed: each file beneath it moves with it."""
    count = 0
    for root, dirs, files in os.walk(src):
        dirs.sort()
        for name in sorted(files):
            count += 1
            if count > _DIRECTORY_RENAME_FILES:
                _spool.write({"_gap": {"reason": f"{src} was renamed to {dst} with more than "
                                                 f"{_DIRECTORY_RENAME_FILES} files beneath it: the renames of the "
                                                 "others are missing", "kind": "directory_rename_too_large"}})
                return
            old = os.path.join(root, name)
            new = dst + old[len(src):]
            s, d = _keep(old), _keep(new)
            if s is not None and d is not None:
                _emit("rename", s, dst=d, fp=_fp(old), via_directory_rename=True)
            elif d is not None:
                _emit("create", d, fp=_fp(old), via_directory_rename=True)
            elif s is not None:
                _emit("delete", s, via_directory_rename=True)


def _renamed(args: tuple[Any, ...]) -> None:
    src_fd = args[2] if len(args) > 2 and isinstance(args[2], int) else -1
    dst_fd = args[3] if len(args) > 3 and isinstance(args[3], int) else -1
    src_abs, dst_abs = _abs(args[0], src_fd, "rename"), _abs(args[1], dst_fd, "rename")
    if src_abs is not None and dst_abs is not None:
        try:
            is_dir = stat.S_ISDIR(os.lstat(src_abs).st_mode)
        except OSError:
            is_dir = False
        if is_dir:
            _moved_directory(src_abs, dst_abs)
            return
    src, dst = _keep(src_abs), _keep(dst_abs)
    if src is not None and dst is not None:
        _emit("rename", src, dst=dst, fp=_fp(src))
    elif dst is not None and src_abs is not None:
        _emit("create", dst, fp=_fp(src_abs))
    elif src is not None:
        _emit("delete", src)


def _xattr_path(value: object) -> str | None:
    return _keep(_fd_path(value)) if isinstance(value, int) else _path(value)


_programs: Any = None


def _launched(event: str, args: tuple[Any, ...]) -> None:
    """A process of the job starts a program: note it when it is not a Python that loads this hook."""
    global _programs
    if event == "os.system":
        program: str | None = "sh"  # the command runs in /bin/sh -c
    else:
        if _programs is None:  # loaded by file: the job may have changed sys.path
            import importlib.util

            spec = importlib.util.spec_from_file_location(
                "_provenance_programs", os.path.join(_HOOK_DIR, "_provenance_programs.py"))
            if spec is None or spec.loader is None:
                return
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            _programs = module
        executable, argv = args[0], args[1]
        env = args[3] if event == "subprocess.Popen" else args[2]
        program = _programs.unseen_program(executable, argv, env, _HOOK_DIR)
    if program is not None and program not in _noted:
        _noted.add(program)
        _spool.write({"_unseen": program})
    if event == "os.exec":
        _spool.close()  # the program image is about to be replaced: what it buffered must be on disk now


def _hook(event: str, args: tuple[object, ...]) -> None:
    global _busy
    if _busy or not event.startswith(_WATCHED):
        return
    _busy = True
    try:
        if os.getpid() != _spool.pid:  # a forked child: its own spool file
            _spool.open()
        if _held:
            held = _held.pop(get_ident(), None)
            if held is not None:
                if event == "open" and args[1] is None and _text(args[0]) == _text(held[0]):
                    # the opener of that open: with a dir_fd (or one the wrapper did not see), it names
                    # the file, or says it cannot; without, it opens the very file already held
                    if _opening.get(get_ident(), -2) == -1:
                        _release(held)
                    else:
                        _os_opened(args[0], int(args[2] or 0))  # type: ignore[call-overload]
                    return
                _release(held)
        if event == "open":
            _open(args)
        elif event == "os.remove":
            if (p := _path(args[0], args[1] if isinstance(args[1], int) else -1, "delete")) is not None:
                _emit("delete", p)
        elif event == "os.rename":
            _renamed(args)
        elif event == "os.setxattr":
            if (p := _xattr_path(args[0])) is not None:
                value = args[2]
                text = value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else str(value)
                _emit("xattr_set", p, name=os.fsdecode(args[1]), value=text)  # type: ignore[arg-type]
        elif event == "os.removexattr":
            if (p := _xattr_path(args[0])) is not None:
                _emit("xattr_remove", p, name=os.fsdecode(args[1]))  # type: ignore[arg-type]
        elif event in ("subprocess.Popen", "os.exec", "os.posix_spawn", "os.system"):
            _launched(event, args)
        # os.rmdir (also relative to a dir_fd) removes an empty directory: nothing to record
    except Exception:
        pass
    finally:
        _busy = False


def _after_fork() -> None:
    """A forked child records into its own spool; what its parent held is the parent's to record."""
    _held.clear()
    _opening.clear()
    _noted.clear()
    _spool.open()


_mp_registered = False


def _before_fork() -> None:
    """multiprocessing ends its children with os._exit, which skips atexit, and clears its finalizers
    in the child after fork handlers ran; its own after-fork registry is the hook that survives."""
    global _mp_registered
    mp_util = sys.modules.get("multiprocessing.util")
    if mp_util is None or _mp_registered:
        return
    try:
        mp_util.register_after_fork(_spool, lambda spool: mp_util.Finalize(spool, spool.close, exitpriority=1000))
        _mp_registered = True
    except Exception:
        pass


# -- deltalake: its I/O is native (Rust), so audit hooks never see it; instrument its API instead ---
def _table_path(table: object) -> str | None:
    uri = getattr(table, "table_uri", None)
    uri = uri() if callable(uri) else uri if uri is not None else table
    try:
        text = os.fsdecode(os.fspath(uri))  # type: ignore[arg-type]
    except TypeError:
        return None
    if text.startswith("file://"):
        text = text[len("file://"):]
    return os.path.abspath(text) if "://" not in text else None


def _with_metadata(kwargs: dict[str, object], commit_properties_type: type) -> None:
    """Put the run's app id and user into the commit, so the tailer can name the writer."""
    ours = {"prov.app_id": _APP, **({"prov.user": _USER} if _USER else {})}
    props = kwargs.get("commit_properties")
    if props is None:
        kwargs["commit_properties"] = commit_properties_type(custom_metadata=ours)
    else:
        merged = dict(getattr(props, "custom_metadata", None) or {})
        merged.update({k: v for k, v in ours.items() if k not in merged})
        props.custom_metadata = merged  # type: ignore[attr-defined]


def _note_table(path: str | None) -> None:
    if path is not None:
        _spool.write({"_delta_table": path})


def _instrument_deltalake(module: object) -> None:
    commit_properties = getattr(module, "CommitProperties", None)
    table_cls = getattr(module, "DeltaTable", None)
    write = getattr(module, "write_deltalake", None)
    if commit_properties is None or table_cls is None or write is None:
        return

    def write_deltalake(table_or_uri: object, *args: object, **kwargs: object) -> object:
        try:
            _with_metadata(kwargs, commit_properties)
        except Exception:
            pass
        result = write(table_or_uri, *args, **kwargs)
        _note_table(_table_path(table_or_uri))
        return result

    def writing(method: object) -> object:
        def wrapped(self: object, *args: object, **kwargs: object) -> object:
            try:
                _with_metadata(kwargs, commit_properties)
            except Exception:
                pass
            result = method(self, *args, **kwargs)  # type: ignore[operator]
            _note_table(_table_path(self))
            return result
        return wrapped

    def reading(method: object) -> object:
        def wrapped(self: object, *args: object, **kwargs: object) -> object:
            path = _table_path(self)
            if path is not None:
                try:
                    _emit("read", f"delta://{path}@{self.version()}")  # type: ignore[attr-defined]
                    _note_table(path)
                except Exception:
                    pass
            return method(self, *args, **kwargs)  # type: ignore[operator]
        return wrapped

    module.write_deltalake = write_deltalake  # type: ignore[attr-defined]
    for name in ("delete", "update"):
        if hasattr(table_cls, name):
            setattr(table_cls, name, writing(getattr(table_cls, name)))
    for name in ("to_pyarrow_table", "to_pandas", "to_pyarrow_dataset", "file_uris"):
        if hasattr(table_cls, name):
            setattr(table_cls, name, reading(getattr(table_cls, name)))


# -- pyarrow (and pandas, which reads and writes parquet through it): native I/O too ---------------
_native_depth = 0  # read_table calls ParquetDataset calls ...: only the outermost call records


def _files_below(path: str) -> list[str]:
    """The data files a dataset directory holds (pyarrow skips names starting with '_' or '.')."""
    out: list[str] = []
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith(("_", ".")))
        out.extend(os.path.join(root, f) for f in sorted(files) if not f.startswith(("_", ".")))
    return out


def _local(source: object) -> list[str]:
    """Local paths named by a pyarrow source argument (a path, a list of paths); [] for file objects."""
    if isinstance(source, (list, tuple)):
        return [p for item in source for p in _local(item)]
    if not isinstance(source, (str, bytes, os.PathLike)):
        return []
    text = os.fsdecode(os.fspath(source))
    if text.startswith("file://"):
        text = text[len("file://"):]
    return [os.path.abspath(text)] if "://" not in text else []


def _snapshot(paths: list[str]) -> dict[str, int]:
    out = {}
    for path in paths:
        for f in _files_below(path) if os.path.isdir(path) else [path]:
            try:
                out[f] = os.stat(f).st_mtime_ns
            except OSError:
                pass
    return out


def _native(function: object, position: int, keyword: str, writes: bool) -> object:
    """Wrap a pyarrow entry point whose argument ``position``/``keyword`` names the file(s) it reads or
    writes, so that the files become events as if Python had opened them."""

    def wrapped(*args: object, **kwargs: object) -> object:
        global _native_depth
        source = args[position] if len(args) > position else kwargs.get(keyword)
        outermost = _native_depth == 0
        paths = _local(source) if outermost else []
        began = _now()
        before = _snapshot(paths) if writes and paths else {}
        _native_depth += 1
        try:
            result = function(*args, **kwargs)  # type: ignore[operator]
        finally:
            _native_depth -= 1
        if paths:
            try:
                if writes:
                    for f, mtime in _snapshot(paths).items():
                        if before.get(f) != mtime and (q := _path(f)) is not None:  # written, and ended: known
                            _emit("write" if f in before else "create", q, fp=_fp(f), opened=began, via="pyarrow")
                else:
                    for p in paths:
                        for f in _files_below(p) if os.path.isdir(p) else [p]:
                            if (q := _path(f)) is not None:
                                _emit("read", q, fp=_fp(f), opened=began, via="pyarrow")
            except Exception:
                pass
        return result

    wrapped.__wrapped__ = function  # type: ignore[attr-defined]
    return wrapped


# (module, attribute, argument position, keyword, writes)
_PYARROW_ENTRY_POINTS = {
    "pyarrow.parquet": [("read_table", 0, "source", False), ("read_pandas", 0, "source", False),
                        ("read_metadata", 0, "where", False), ("read_schema", 0, "where", False),
                        ("write_table", 1, "where", True), ("write_to_dataset", 1, "root_path", True)],
    "pyarrow.feather": [("read_table", 0, "source", False), ("read_feather", 0, "source", False),
                        ("write_feather", 1, "dest", True)],
    "pyarrow.csv": [("read_csv", 0, "input_file", False), ("write_csv", 1, "output_file", True)],
    "pyarrow.orc": [("read_table", 0, "source", False), ("write_table", 1, "where", True)],
    "pyarrow.dataset": [("dataset", 0, "source", False), ("write_dataset", 1, "base_dir", True)],
}
_PYARROW_CLASSES = {"pyarrow.parquet": [("ParquetFile", 1, "source", False), ("ParquetWriter", 1, "where", True),
                                        ("ParquetDataset", 1, "path_or_paths", False)]}


def _opened_natively(path: object, mode: object) -> None:
    """A file pyarrow opened in C++ from a mode string (pandas' to_parquet writes through one)."""
    if _native_depth:
        return
    for p in _local(path):
        q = _path(p)
        if q is None:
            continue
        text = str(mode or "r")
        writes = any(c in text for c in "wax+")
        creates = writes and ("x" in text or not os.path.exists(q))
        _emit("create" if creates else "write" if writes else "read", q, mode=text, fp=None if writes else _fp(q),
              ends_unknown=writes, via="pyarrow")


def _instrument_pyarrow_streams(module: ModuleType) -> None:
    lib_osfile = getattr(module, "OSFile", None)
    if isinstance(lib_osfile, type) and not getattr(lib_osfile, "_provenance", False):
        try:
            class OSFile(lib_osfile):  # type: ignore[valid-type, misc]
                _provenance = True

                def __new__(cls, path: object, mode: str = "r", *args: object, **kwargs: object) -> OSFile:
                    try:  # before the C++ open, which creates the file
                        _opened_natively(path, mode)
                    except Exception:
                        pass
                    return super().__new__(cls, path, mode, *args, **kwargs)  # type: ignore[no-any-return]

            OSFile.__name__ = OSFile.__qualname__ = "OSFile"
            OSFile.__module__ = lib_osfile.__module__
            module.OSFile = OSFile  # type: ignore[attr-defined]
        except TypeError:  # a final class in some build: leave it
            pass
    for name, writes_default in (("memory_map", False), ("input_stream", False), ("output_stream", True),
                                 ("create_memory_map", True)):
        original = getattr(module, name, None)
        if original is None or hasattr(original, "__wrapped__"):
            continue

        def wrapped(source: object, *args: object, _original: object = original, _writes: bool = writes_default,
                    _name: str = name, **kwargs: object) -> object:
            mode = kwargs.get("mode", args[0] if _name == "memory_map" and args else ("w" if _writes else "r"))
            try:
                _opened_natively(source, mode)
            except Exception:
                pass
            return _original(source, *args, **kwargs)  # type: ignore[operator]

        wrapped.__wrapped__ = original  # type: ignore[attr-defined]
        setattr(module, name, wrapped)


def _instrument_pyarrow(module: ModuleType) -> None:
    if module.__name__ == "pyarrow":
        _instrument_pyarrow_streams(module)
        return
    targets = [module]
    core = sys.modules.get(module.__name__ + ".core")  # pyarrow.parquet's functions live in .core
    if core is not None:
        targets.append(core)
    for name, position, keyword, writes in _PYARROW_ENTRY_POINTS.get(module.__name__, []):
        original = getattr(module, name, None)
        if original is None or hasattr(original, "__wrapped__"):
            continue
        wrapped = _native(original, position, keyword, writes)
        for target in targets:
            if getattr(target, name, None) is original:
                setattr(target, name, wrapped)
    for name, position, keyword, writes in _PYARROW_CLASSES.get(module.__name__, []):
        cls = getattr(module, name, None)
        init = getattr(cls, "__init__", None) if isinstance(cls, type) else None
        if init is not None and not hasattr(init, "__wrapped__"):
            setattr(cls, "__init__", _native(init, position, keyword, writes))  # noqa: B010


_AFTER_IMPORT = {"deltalake": _instrument_deltalake,
                 **({name: _instrument_pyarrow for name in ["pyarrow", *_PYARROW_ENTRY_POINTS]} if _FILES else {})}


class _AfterImport:
    """A meta-path finder that instruments a module right after it is first loaded."""

    def find_spec(self, name: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        hook = _AFTER_IMPORT.get(name)
        if hook is None:
            return None
        for finder in sys.meta_path:
            if id(finder) == id(self) or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        original = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            original(module)
            try:
                hook(module)
            except Exception:  # never break the job
                pass

        setattr(loader, "exec_module", exec_module)  # noqa: B010 - mypy forbids assigning to a method
        return spec


def _install() -> None:
    if not (_APP and _SPOOL):
        return
    _spool.open()
    atexit.register(_spool.close)
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork)
    sys.meta_path.insert(0, _AfterImport())
    if _FILES:
        os.open = _os_open
        for functions in (os.supports_dir_fd, os.supports_fd, os.supports_follow_symlinks, os.supports_effective_ids):
            if _real_os_open in functions:  # shutil.rmtree uses its dir_fd walk only if os.open is listed
                functions.add(_os_open)
        sys.addaudithook(_hook)


def _chain() -> None:
    """Run the sitecustomize this one shadows, if the job's environment has one."""
    import importlib.machinery
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    others = [p for p in sys.path if os.path.abspath(p or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", others)
    if spec is not None and spec.loader is not None:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)


_install()
_chain()
