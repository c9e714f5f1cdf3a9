"""Injected into jobs started by ``provenance run --capture audit-hook`` (through PYTHONPATH).

Records the job's own file operations as canonical events, one JSON line each, in a spool file per
process: ``$PROVENANCE_SPOOL/<pid>.jsonl``. It covers open (with the mode), remove, rename and
extended attributes; shutil's operations arrive through these. Making and removing directories is
not lineage (an empty directory holds no data); renaming one is, as it moves what it holds. The launcher collects the
spool after the job. The last line of a complete spool is an end marker. A spool without one (the
process was killed, or called os._exit) is reported on the app as a capture gap.

Stdlib only, and it never raises into the job: a capture failure must not kill the job.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import sys
import time
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType

_APP = os.environ.get("PROVENANCE_APP_ID", "")
_USER = os.environ.get("PROVENANCE_USER") or None
_SPOOL = os.environ.get("PROVENANCE_SPOOL", "")
_FILES = os.environ.get("PROVENANCE_HOOK_FILES", "1") != "0"  # off when fanotify sees the file I/O
_IMPORT_FILES = ("<frozen importlib._bootstrap_external>", "<frozen importlib._bootstrap>", "<frozen zipimport>")
_SKIP_PREFIXES = tuple(
    sorted({p for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix) if p}
           | {"/proc/", "/sys/"} | ({_SPOOL} if _SPOOL else set())
           | {p for p in os.environ.get("PROVENANCE_NOISE", "").split(os.pathsep) if p})
)
_SKIP_PARTS_RE = re.compile("/__pycache__/|/site-packages/|/dist-packages/")
_FLUSH_EVERY = 256


class _Spool:
    """The process's spool file, created at its first event (a process with none leaves no file)."""

    def __init__(self) -> None:
        self.pid = -1
        self.seq = 0
        self.buf: list[str] = []
        self.file: TextIO | None = None
        self.failed = False

    def open(self) -> None:
        self.pid, self.seq, self.buf, self.file, self.failed = os.getpid(), 0, [], None, False

    def write(self, event: dict[str, object]) -> None:
        """A record that is not a file event (an end marker, a table note)."""
        if self._ready():
            self.buf.append(json.dumps(event))

    def write_event(self, head: str, tail: str) -> None:
        """A file event, as the JSON text around its event id (built by hand: this is the hot path)."""
        if not self._ready():
            return
        self.seq += 1
        self.buf.append(f'{head}"event_id":"audit-hook:{_APP}:{self.pid}:{self.seq}"{tail}')
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
        if self.file is None:
            return
        self.buf.append(json.dumps({"_end": True, "pid": self.pid, "events": self.seq}))
        self.flush()
        try:
            self.file.close()
        except OSError:
            pass
        self.file = None


_spool = _Spool()
_code_seen: set[str] = set()
_busy = False  # our own file writes raise audit events too


def _source_of(path: str) -> str:
    """``pkg/__pycache__/mod.cpython-311.pyc`` → ``pkg/mod.py``: reading cached bytecode is reading the code."""
    head, _, name = path.rpartition("/__pycache__/")
    if not head or not name.endswith(".pyc"):
        return path
    return f"{head}/{name.split('.', 1)[0]}.py"


def _path(value: object) -> str | None:
    if isinstance(value, str):
        path = value
    elif isinstance(value, int):
        return None  # an fd: its path was recorded when it was opened
    else:
        try:
            path = os.fsdecode(os.fspath(value))  # type: ignore[call-overload]
        except TypeError:
            return None
    if path[:1] != "/" or "/." in path or "//" in path:
        path = os.path.abspath(path)
    if "/__pycache__/" in path:
        path = _source_of(path)
    if path.startswith("/dev/") and not path.startswith("/dev/shm/"):
        return None  # devices; /dev/shm is a file system like any other
    if path.startswith(_SKIP_PREFIXES) or _SKIP_PARTS_RE.search(path) or path.endswith(".pyc"):
        return None
    return path


_xattr_ts: dict[str, int] = {}
_HEAD = ('{"source":"audit-hook","kind":"file","app_id":' + json.dumps(_APP) + ","
         + (f'"user":{json.dumps(_USER)},' if _USER else ""))


def _q(text: str) -> str:
    """A JSON string literal, quickly for the common plain path."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return json.dumps(text)


def _emit(op: str, path: str, dst: str | None = None, mode: str | None = None, **more: object) -> None:
    ts = time.time_ns() // 1_000_000
    if op.startswith("xattr"):  # a later change of a file's tags gets a later time, even within a millisecond
        ts = _xattr_ts[path] = max(ts, _xattr_ts.get(path, 0) + 1)
    if more:
        attrs = json.dumps({"pid": _spool.pid, **({"mode": mode} if mode is not None else {}), **more})
    else:
        attrs = f'{{"pid":{_spool.pid}' + (f',"mode":{_q(mode)}}}' if mode is not None else "}")
    where = f'"uri":{_q(path)},' + (f'"dst":{_q(dst)},' if dst is not None else "")
    _spool.write_event(f'{_HEAD}"op":"{op}","ts":{ts},{where}"attrs":{attrs},', "}")


def _open(args: tuple[object, ...]) -> None:
    path = _path(args[0])
    if path is None:
        return
    try:
        caller = sys._getframe(2).f_code.co_filename
    except ValueError:
        caller = ""  # no Python frame: the interpreter reading the main script
    if caller in _IMPORT_FILES or not caller:  # the job's own code (its installed libraries are noise)
        if path not in _code_seen and os.path.isfile(path):
            _code_seen.add(path)
            _emit("read", path, code=True)
        return
    mode, flags = args[1], args[2] if len(args) > 2 else 0
    if isinstance(mode, str):
        writes = "w" in mode or "a" in mode or "x" in mode or "+" in mode
        creates = "x" in mode or (("w" in mode or "a" in mode) and not os.path.exists(path))
    else:  # os.open: mode is None, flags say it
        flags = int(flags or 0)  # type: ignore[call-overload]
        writes = bool(flags & (os.O_WRONLY | os.O_RDWR))
        creates = bool(flags & os.O_CREAT) and not os.path.exists(path)
    if not writes and not os.path.isfile(path):
        return  # a directory, or a read that will fail (the hook runs before the open)
    _emit("create" if creates else "write" if writes else "read", path, mode=str(mode))


def _hook(event: str, args: tuple[object, ...]) -> None:
    global _busy
    if _busy or not event.startswith(("open", "os.", "shutil.")):
        return
    _busy = True
    try:
        if os.getpid() != _spool.pid:  # a forked child: its own spool file
            _spool.open()
        if event == "open":
            _open(args)
        elif event == "os.remove":
            if (p := _path(args[0])) is not None:
                _emit("delete", p)
        elif event == "os.rename":
            src, dst = _path(args[0]), _path(args[1])
            if src is not None and dst is not None:
                _emit("rename", src, dst=dst)
            elif dst is not None:
                _emit("create", dst)
            elif src is not None:
                _emit("delete", src)
        elif event == "os.setxattr":
            if (p := _path(args[0])) is not None:
                value = args[2]
                text = value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else str(value)
                _emit("xattr_set", p, name=os.fsdecode(args[1]), value=text)  # type: ignore[arg-type]
        elif event == "os.removexattr":
            if (p := _path(args[0])) is not None:
                _emit("xattr_remove", p, name=os.fsdecode(args[1]))  # type: ignore[arg-type]
    except Exception:
        pass
    finally:
        _busy = False


def _after_fork() -> None:
    """A forked child records into its own spool."""
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
                        if before.get(f) != mtime and (q := _path(f)) is not None:
                            _emit("write" if f in before else "create", q, via="pyarrow")
                else:
                    for p in paths:
                        for f in _files_below(p) if os.path.isdir(p) else [p]:
                            if (q := _path(f)) is not None:
                                _emit("read", q, via="pyarrow")
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
        _emit("create" if creates else "write" if writes else "read", q, mode=text, via="pyarrow")


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
