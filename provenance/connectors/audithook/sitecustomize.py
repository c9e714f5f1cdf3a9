"""Injected into jobs started by ``provenance run --capture audit-hook`` (through PYTHONPATH).

Records the job's own file operations as canonical events, one JSON line each, in a spool file per
process: ``$PROVENANCE_SPOOL/<pid>.jsonl``. It covers open (with the mode), remove, rename, mkdir,
rmdir and extended attributes; shutil's operations arrive through these. The launcher collects the
spool after the job. The last line of a complete spool is an end marker. A spool without one (the
process was killed, or called os._exit) is reported on the app as a capture gap.

Stdlib only, and it never raises into the job: a capture failure must not kill the job.
"""

from __future__ import annotations

import atexit
import json
import os
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
_IMPORT_FILES = ("<frozen importlib._bootstrap_external>", "<frozen importlib._bootstrap>", "<frozen zipimport>")
_SKIP_PREFIXES = tuple(
    sorted({p for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix) if p}
           | {"/proc/", "/sys/", "/dev/"} | ({_SPOOL} if _SPOOL else set()))
)
_SKIP_PARTS = ("/__pycache__/", "/site-packages/", "/dist-packages/")
_FLUSH_EVERY = 256


class _Spool:
    def __init__(self) -> None:
        self.pid = -1
        self.seq = 0
        self.buf: list[str] = []
        self.file: TextIO | None = None

    def open(self) -> None:
        self.pid, self.seq, self.buf = os.getpid(), 0, []
        try:
            self.file = open(os.path.join(_SPOOL, f"{self.pid}.jsonl"), "a", encoding="utf-8")
        except OSError:
            self.file = None

    def write(self, event: dict[str, object]) -> None:
        if self.file is None:
            return
        self.seq += 1
        if "kind" in event:
            event["event_id"] = f"audit-hook:{_APP}:{self.pid}:{self.seq}"
        self.buf.append(json.dumps(event))
        if len(self.buf) >= _FLUSH_EVERY:
            self.flush()

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
_busy = False  # our own file writes raise audit events too


def _path(value: object) -> str | None:
    if isinstance(value, int):
        return None  # an fd: its path was recorded when it was opened
    try:
        path = os.fsdecode(os.fspath(value))  # type: ignore[call-overload]
    except TypeError:
        return None
    path = os.path.abspath(path)
    if path.startswith(_SKIP_PREFIXES) or any(p in path for p in _SKIP_PARTS) or path.endswith(".pyc"):
        return None
    return path


def _emit(op: str, path: str, dst: str | None = None, **more: object) -> None:
    event: dict[str, object] = {"source": "audit-hook", "kind": "file", "op": op, "ts": time.time_ns() // 1_000_000,
                                "app_id": _APP, "uri": path, "attrs": {"pid": os.getpid(), **more}}
    if dst is not None:
        event["dst"] = dst
    if _USER:
        event["user"] = _USER
    _spool.write(event)


def _open(args: tuple[object, ...]) -> None:
    path = _path(args[0])
    if path is None:
        return
    caller = sys._getframe(2).f_code.co_filename
    if caller in _IMPORT_FILES:
        return  # the import system reading modules is not the job's I/O
    mode, flags = args[1], args[2] if len(args) > 2 else 0
    if isinstance(mode, str):
        writes = any(c in mode for c in "wax+")
        creates = "x" in mode or (any(c in mode for c in "wa") and not os.path.exists(path))
    else:  # os.open: mode is None, flags say it
        flags = int(flags or 0)  # type: ignore[call-overload]
        writes = bool(flags & (os.O_WRONLY | os.O_RDWR))
        creates = bool(flags & os.O_CREAT) and not os.path.exists(path)
    if os.path.isdir(path) and not writes:
        return
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
        elif event == "os.mkdir":
            if (p := _path(args[0])) is not None and not os.path.exists(p):
                _emit("create", p, directory=True)
        elif event == "os.rmdir":
            if (p := _path(args[0])) is not None:
                _emit("delete", p, directory=True)
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
    for name in ("to_pyarrow_table", "to_pandas", "to_pyarrow_dataset"):
        if hasattr(table_cls, name):
            setattr(table_cls, name, reading(getattr(table_cls, name)))


_AFTER_IMPORT = {"deltalake": _instrument_deltalake}


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
