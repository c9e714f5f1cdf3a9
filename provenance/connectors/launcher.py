"""``provenance run``: the resource manager of one machine.

It starts the job, and emits the app's events to the bus: submitted, started, then finished, failed
or killed. They carry who ran it, the command and where, the pid, the start and end, CPU time and
peak memory, the hardware, the git commit of the working tree (and whether it was dirty), and a
fingerprint of the Python environment. The job's stdout and stderr go to the terminal and to a log
file that becomes the app's log artifact. The exit status is the job's. Signals sent to the
launcher are passed on to the job.

The end event (``finished``, ``failed`` or ``killed``) also says what the file capture saw:
``capture`` (the mode), ``captured_events``, ``captured_processes``, ``capture_gaps`` (each
``{"reason": ..., "kind"?: ...}``; ``kind`` is ``"unseen_processes"`` with ``programs`` when the
audit hook could not see some of the job's programs, ``"unresolved_path"`` with ``op`` and
``name`` when a file operation's path could not be named, ``"outlived_job"`` with ``processes``
(``pid``, ``proc``, ``argv``) when processes of the job still ran ``grace_s`` seconds after it ended:
until then they are waited for and captured), and ``processes``/``processes_omitted``
(see :mod:`provenance.connectors.processes`). After the job, the file events get content hashes
(:mod:`provenance.connectors.fingerprint`).
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import IO, Any

from provenance.bus.port import Bus, Record, raw_topic
from provenance.connectors import audithook, fanotify, processes
from provenance.connectors.delta import DeltaLogTailer, Writer, fold_table_files
from provenance.connectors.fingerprint import HASH_LIMIT, attach_hashes

CAPTURE_MODES = ("auto", "fanotify", "audit-hook", "off")
#: how long, after the job ended, its processes that still run are waited for (and captured) by default
GRACE_S = 5.0
LINGER_POLL_S = 0.05
GAP_PROCESSES = 50
_FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGINT)


def new_app_id() -> str:
    return f"app_{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}_{uuid.uuid4().hex[:8]}"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def git_state(cwd: Path) -> dict[str, Any]:
    """Commit and dirty flag of the working tree at ``cwd`` (empty outside a git repository)."""
    if shutil.which("git") is None:
        return {}
    try:
        head = subprocess.run(["git", "-C", str(cwd), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=False)
        if head.returncode != 0:
            return {}
        status = subprocess.run(["git", "-C", str(cwd), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"git_commit": head.stdout.strip(), "git_dirty": bool(status.stdout.strip())}


def environment_fingerprint() -> dict[str, Any]:
    """Python version and the sorted installed distributions, with a hash of both."""
    packages = sorted({f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions()
                       if d.metadata and d.metadata["Name"]}, key=str.lower)
    python = platform.python_version()
    digest = hashlib.sha256("\n".join([f"python=={python}", *packages]).encode()).hexdigest()
    return {"python": python, "packages": packages, "env_hash": f"sha256:{digest[:16]}"}


def hardware() -> dict[str, Any]:
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
                break
    except OSError:
        pass
    gpus: list[str] = []
    if shutil.which("nvidia-smi"):
        try:
            r = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=5, check=False)
            gpus = [ln.strip() for ln in r.stdout.splitlines() if ln.strip()]
        except (OSError, subprocess.SubprocessError):
            gpus = []
    return {"cpus": os.cpu_count(), "memory_bytes": mem, "gpus": gpus, "machine": platform.machine()}


@dataclass
class RunResult:
    app_id: str
    exit_code: int
    state: str
    log_path: Path
    events: int
    capture: str
    gaps: list[dict[str, object]] = field(default_factory=list)
    processes: list[dict[str, object]] = field(default_factory=list)


class _Capture:
    """The file capture of one run, whatever the mode: set up before the job, collected after it.

    ``fanotify`` watches every process of the job's tree; the audit hook is still injected, with file
    events off, for what only the job's own runtime can do (the app id in Delta commit metadata, the
    exact table version a deltalake reader read). ``audit-hook`` records Python-level file I/O plus
    the native I/O of pyarrow and deltalake. A mode that cannot start falls back and says why.
    """

    def __init__(self, requested: str, home: Path, app_id: str, user: str | None,
                 noise: Sequence[str] | None, ignore: Sequence[str], workdir: Path,
                 hash_limit: int = HASH_LIMIT) -> None:
        self.app_id, self.user = app_id, user
        self.home, self.hash_limit = home, hash_limit
        self.spool = home / "spool" / app_id
        self.unseen_root: str | None = None
        self.gaps: list[dict[str, object]] = []
        self.watcher: fanotify.Watcher | None = None
        # never the job's data: the runtime and libraries, our own state and our own hook
        self.noise = [*(fanotify.default_noise() if noise is None else noise),
                      *(p.rstrip("/") + "/" for p in [str(home.resolve()), str(audithook.HOOK_DIR), *ignore])]
        mode = requested
        if requested in ("auto", "fanotify"):
            reason = fanotify.probe()
            if reason is None:
                mode = "fanotify"
                self.watcher = fanotify.Watcher(app_id, user, noise=self.noise, workdir=workdir)
            else:
                mode = "audit-hook"
                if requested == "fanotify":
                    self.gaps.append({"reason": f"fanotify capture unavailable ({reason}); the audit hook "
                                                "captured Python file I/O only"})
        self.mode = mode

    def environment(self, argv: Sequence[str], env: dict[str, str]) -> dict[str, str]:
        if self.mode == "off":
            return env
        job_env = audithook.prepare(self.spool, self.app_id, self.user, env, files=self.mode == "audit-hook",
                                    noise=self.noise)
        if self.mode == "audit-hook":  # the hook sees only a Python that loads it: say so when the job is not one
            try:
                self.unseen_root = audithook.unseen_program(argv, job_env)
            except Exception as exc:  # never the job's failure
                self.unseen_root = f"{argv[0]} (not checked: {exc})"
        return job_env

    def start(self) -> None:
        if self.watcher is None:
            return
        try:
            self.watcher.start()
        except OSError as exc:  # never the job's failure: fall back to the hook, and say so
            self.gaps.append({"reason": f"fanotify could not start ({exc}); the audit hook captured Python "
                                        "file I/O only"})
            self.watcher, self.mode = None, "audit-hook"

    def started(self, pid: int) -> None:
        if self.watcher is not None:
            self.watcher.add_root(pid)

    def linger(self, grace_s: float) -> None:
        """The job has ended: its processes that still run (a detached child: ``(cmd &)``, ``nohup``, ``setsid``)
        are its too. Keep capturing until they end, for ``grace_s`` at most; name those still running then in a
        capture gap (what they do afterwards is not captured), never drop them silently."""
        if self.watcher is None:
            return
        deadline = time.monotonic() + max(grace_s, 0.0)
        running = self.watcher.alive()
        while running and time.monotonic() < deadline:
            time.sleep(LINGER_POLL_S)
            running = self.watcher.alive()
        if running:
            listed = [{"pid": r.pid, "proc": r.proc, "argv": r.argv} for r in running[:GAP_PROCESSES]]
            names = ", ".join(f"{r.pid} ({' '.join(r.argv or [r.exe or '?'])[:80]})" for r in running[:5])
            self.gaps.append({"reason": f"{len(running)} process(es) of the job still ran {grace_s:g} s after it "
                                        f"ended: {names}{', …' if len(running) > 5 else ''}; their file I/O from "
                                        "then on is not captured (capture.grace_s waits longer)",
                              "kind": "outlived_job", "processes": listed})

    def finish(self) -> tuple[audithook.Collected, dict[tuple[Path, int], Writer]]:
        collected = audithook.collect(self.spool) if self.mode != "off" else audithook.Collected()
        collected.gaps[:0] = self.gaps
        if self.mode == "audit-hook":
            programs = sorted({*([self.unseen_root] if self.unseen_root else []), *collected.unseen})
            if programs:
                collected.gaps.append({"reason": "the audit hook sees only Python processes that load it; the job "
                                                 f"ran {len(programs)} other program(s), whose file I/O is not "
                                                 "captured (fanotify capture, as root, sees every process)",
                                       "kind": "unseen_processes", "programs": programs[:50]})
        events: list[dict[str, Any]] = []
        torn: list[bytes] = []  # a line cut short goes on as it is: the processor dead-letters it
        for line in collected.lines:
            try:
                events.append(json.loads(line))
            except ValueError:
                torn.append(line)
        if self.watcher is not None:
            seen = self.watcher.stop()
            events.extend(seen.events)
            collected.processes = seen.processes
            collected.process_records = seen.process_records
            collected.gaps.extend(seen.gaps)
            if seen.overflows:
                collected.gaps.append({"reason": f"the fanotify queue overflowed {seen.overflows} time(s): some "
                                                 "file events are missing"})
        if self.watcher is not None:
            # fanotify saw every process: what the job's own instrumentation recorded with its process key is
            # that process's (the same key fanotify gives it), not only the run's
            for e in events:
                attrs = e.get("attrs")
                if e.get("source") != "fanotify" and isinstance(attrs, dict) and isinstance(attrs.get("proc"), str):
                    attrs.setdefault("tier", "process")
        known = [str(e["uri"]) for e in events if str(e.get("uri", "")).startswith("delta://")]
        folded = fold_table_files(events, self.app_id, self.user, known)
        try:  # after the fold: a table's data and log files are not artifacts of their own
            attach_hashes(folded.events, self.home / "hashes.db", limit=self.hash_limit)
        except Exception as exc:  # hashing never fails the run; the events go on without hashes
            collected.gaps.append({"reason": f"content hashes were not taken: {exc}"})
        collected.lines = [*(json.dumps(e).encode() for e in folded.events), *torn]
        collected.delta_tables.update(str(t) for t in folded.tables)
        if self.spool.is_dir():
            shutil.rmtree(self.spool, ignore_errors=True)
        return collected, folded.writers

    def abort(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        if self.spool.is_dir():
            shutil.rmtree(self.spool, ignore_errors=True)


class Launcher:
    """Runs one job and publishes what happened to ``bus``."""

    def __init__(self, bus: Bus, home: Path, *, echo: bool = True, noise: Sequence[str] | None = None,
                 ignore: Sequence[str] = (), hash_limit: int = HASH_LIMIT, grace_s: float = GRACE_S) -> None:
        self.bus = bus
        self.grace_s = grace_s
        self.home = home
        self.echo = echo
        self.noise, self.ignore = noise, ignore
        self.hash_limit = hash_limit
        self.topic = raw_topic("canonical")

    def _emit(self, events: Sequence[dict[str, Any]]) -> None:
        self.bus.produce(self.topic, [Record(value=json.dumps(e, default=str).encode(), key=e.get("app_id"))
                                      for e in events])

    def run(self, argv: Sequence[str], *, name: str | None = None, project: str | None = None,
            capture: str = "auto", cwd: Path | None = None, env: dict[str, str] | None = None) -> RunResult:
        if not argv:
            raise ValueError("nothing to run")
        if capture not in CAPTURE_MODES:
            raise ValueError(f"unknown capture mode {capture!r} (one of {', '.join(CAPTURE_MODES)})")
        app_id = new_app_id()
        user = getpass.getuser()
        workdir = (cwd or Path.cwd()).resolve()
        logs = self.home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log_path = logs / f"{app_id}.log"
        cap = _Capture(capture, self.home, app_id, user, self.noise, self.ignore, workdir, self.hash_limit)
        attrs: dict[str, Any] = {"command": list(argv), "cwd": str(workdir), "host": socket.gethostname(),
                                 "log": str(log_path), **git_state(workdir), "hardware": hardware()}
        if name:
            attrs["name"] = name
        if project:
            attrs["project"] = project
        base = {"source": "launcher", "kind": "app", "app_id": app_id, "user": user}
        self._emit([{**base, "op": "submitted", "ts": now_ms(), "event_id": f"launcher:{app_id}:submitted",
                     "attrs": attrs}])
        cap.start()  # the watcher must be running before the job forks, and the launcher fork nothing else
        job_env = cap.environment(argv, dict(os.environ if env is None else env))
        start = now_ms()
        try:
            proc = subprocess.Popen(list(argv), cwd=workdir, env=job_env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE)
        except OSError as exc:
            cap.abort()
            self._emit([{**base, "op": "failed", "ts": now_ms(), "event_id": f"launcher:{app_id}:end",
                         "attrs": {"exit_code": 127, "error": f"cannot start: {exc}", "capture": cap.mode}}])
            raise
        cap.started(proc.pid)
        # the environment fingerprint (~0.2 s) is taken while the job already runs
        self._emit([{**base, "op": "started", "ts": start, "event_id": f"launcher:{app_id}:started",
                     "attrs": {"pid": proc.pid, "capture": cap.mode, **environment_fingerprint()}}])
        restore = self._forward_signals(proc)
        try:
            with log_path.open("wb") as log:
                lock = threading.Lock()
                pumps = [threading.Thread(target=_pump, args=(stream, sink, log, lock), daemon=True)
                         for stream, sink in ((proc.stdout, sys.stdout.buffer if self.echo else None),
                                              (proc.stderr, sys.stderr.buffer if self.echo else None))]
                for p in pumps:
                    p.start()
                status, usage = _wait(proc.pid)
                proc.returncode = os.waitstatus_to_exitcode(status)
                for p in pumps:
                    p.join()
        finally:
            restore()
        end = now_ms()
        code = proc.returncode
        if code < 0:
            state, exit_code, extra = "killed", 128 - code, {"signal": signal.Signals(-code).name}
        else:
            state, exit_code, extra = ("finished" if code == 0 else "failed"), code, {}
        cap.linger(self.grace_s)
        collected, writers = cap.finish()
        listed, omitted = processes.bounded(collected.process_records)
        if collected.lines:
            self.bus.produce(self.topic, [Record(value=ln, key=app_id) for ln in collected.lines])
        if collected.delta_tables:  # the commits the job made (and any it raced with) become events
            DeltaLogTailer(self.bus, self.home / "delta_state.json").tail(
                (Path(t) for t in collected.delta_tables), writers)
        # the log is the app's output too: an artifact typed `log`
        log_uri = log_path.resolve().as_uri()
        self._emit([
            {"source": "launcher", "kind": "file", "op": "create", "ts": start, "app_id": app_id, "user": user,
             "uri": log_uri, "event_id": f"launcher:{app_id}:log", "attrs": {"size": log_path.stat().st_size}},
            {"source": "launcher", "kind": "tag", "op": "set", "ts": start, "uri": log_uri,
             "event_id": f"launcher:{app_id}:log-type", "attrs": {"key": "type", "value": "log"}},
            {**base, "op": state, "ts": end, "event_id": f"launcher:{app_id}:end",
             "attrs": {"exit_code": exit_code, **extra, "duration_ms": end - start,
                       "cpu_user_s": round(usage.ru_utime, 3), "cpu_system_s": round(usage.ru_stime, 3),
                       "peak_rss_bytes": usage.ru_maxrss * 1024, "captured_events": len(collected.lines),
                       "capture": cap.mode,
                       "captured_processes": collected.processes, "capture_gaps": collected.gaps,
                       "processes": listed, "processes_omitted": omitted}},
        ])
        return RunResult(app_id, exit_code, state, log_path, len(collected.lines), cap.mode, collected.gaps, listed)

    @staticmethod
    def _forward_signals(proc: subprocess.Popen[bytes]) -> Callable[[], None]:
        """Pass signals on to the job. A Ctrl-C typed in the terminal already reaches the job (same
        process group), so SIGINT is passed on only when the launcher is not in the foreground."""
        foreground = False
        try:
            foreground = os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp()
        except OSError:
            pass
        previous: dict[int, Any] = {}

        def forward(signum: int, _frame: object) -> None:
            if signum == signal.SIGINT and foreground:
                return
            try:
                proc.send_signal(signum)
            except ProcessLookupError:
                pass

        if threading.current_thread() is threading.main_thread():
            for sig in _FORWARDED:
                previous[sig] = signal.signal(sig, forward)

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore


def _wait(pid: int) -> tuple[int, Any]:
    """Wait for the job, waking every 50 ms. A signal sent to the launcher may be delivered to any of its
    threads (the output pumps, a capture reader); Python runs the handler in the main thread, and only
    once that thread runs again: a main thread blocked in ``wait4`` would pass a SIGTERM on only after
    the job had ended by itself."""
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            return status, usage
        time.sleep(0.05)


def _pump(stream: IO[bytes] | None, sink: IO[bytes] | None, log: IO[bytes], lock: threading.Lock) -> None:
    if stream is None:
        return
    for chunk in iter(lambda: stream.read1(65536), b""):  # type: ignore[attr-defined]
        with lock:
            log.write(chunk)
        if sink is not None:
            try:
                sink.write(chunk)
                sink.flush()
            except (OSError, ValueError):
                pass
    stream.close()
