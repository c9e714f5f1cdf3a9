"""Install as users do: build the wheel, install it in a fresh virtual environment (dependencies from the
package index, nothing from this checkout), and run the installed `provenance` from outside the tree:
ingest, queries, the bundled history, and `serve` with its pages, static files and API docs."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin directory of a fresh venv holding only the built wheel and its dependencies."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"  # what a source distribution holds: the build leaves nothing in the checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copyfile(ROOT / name, source / name)
    shutil.copytree(ROOT / "provenance", source / "provenance", ignore=shutil.ignore_patterns("__pycache__"))
    dist = work / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(dist),
                    str(source)], check=True, timeout=600)
    [wheel] = dist.glob("provenance-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, str(wheel)], check=True, timeout=900)
    return venv / "bin"


def _run(bin_dir: Path, cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PROVENANCE"))}
    return subprocess.run([str(bin_dir / "provenance"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_the_installed_copy_is_the_wheel(installed: Path, tmp_path: Path) -> None:
    where = subprocess.run([str(installed / "python"), "-c", "import provenance; print(provenance.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert str(ROOT) not in where and "site-packages" in where


def test_ingest_and_query_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    events = tmp_path / "events.jsonl"
    shutil.copyfile(ROOT / "provenance" / "demo" / "loan_pipeline.jsonl", events)
    r = _run(installed, tmp_path, "--home", str(home), "ingest", str(events), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["dead_lettered"] == 0
    r = _run(installed, tmp_path, "--home", str(home), "audit", "/Projects/loan/Deployments/loan_scoring",
             "--format", "md")
    assert r.returncode == 0 and r.stdout.startswith("# Audit: loan"), r.stderr  # a template from package data
    r = _run(installed, tmp_path, "--home", str(home), "gdpr", "/Projects/loan/Raw/applications_2026_02.csv",
             "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["totals"]["models"] >= 4, r.stderr
    r = _run(installed, tmp_path, "--home", str(tmp_path / "replayed"), "demo", "--replay")
    assert r.returncode == 0 and "GDPR report" in r.stdout, r.stderr  # the bundled history is package data


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert _run(installed, tmp_path, "--home", str(home), "demo", "--replay").returncode == 0
    made = _run(installed, tmp_path, "--home", str(home), "token", "create", "root", "--admin", "--json")
    token = json.loads(made.stdout)["token"]
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PROVENANCE"))}
    proc = subprocess.Popen([str(installed / "provenance"), "--home", str(home), "serve", "--port", str(port)],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2) as resp:
                    assert json.loads(resp.read())["status"] == "ok"
                    break
            except OSError:
                if proc.poll() is not None:
                    raise AssertionError(proc.stderr.read().decode() if proc.stderr else "serve exited") from None
                time.sleep(0.2)
        else:
            raise AssertionError("serve did not answer")

        def get(path: str) -> tuple[int, bytes, str]:
            req = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.read(), resp.headers.get("content-type", "")

        assert get("/static/app.css")[0] == 200 and get("/static/app.js")[0] == 200
        status, body, _ = get("/docs")
        assert status == 200 and b"/static/swagger/swagger-ui-bundle.js" in body
        assert get("/static/swagger/swagger-ui-bundle.js")[0] == 200  # Swagger UI served from here, offline
        status, body, ctype = get("/ui/login")
        assert status == 200 and ctype.startswith("text/html") and b"Sign in" in body
        assert json.loads(get("/api/apps")[1])["total"] == 14
        # the installed wheel draws the lineage picture (its layout library came with it) and the reports' PDF
        status, body, _ = get("/ui/artifact?uri=/Projects/loan/Deployments/loan_scoring&depth=10")
        assert status == 200 and body.count(b'<g class="node ') >= 15 and body.count(b'class="edge"') >= 15
        status, body, ctype = get("/ui/reports/audit.pdf?uri=/Projects/loan/Deployments/loan_scoring")
        assert status == 200 and ctype == "application/pdf" and body.startswith(b"%PDF")
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        if proc.stderr:
            proc.stderr.close()
