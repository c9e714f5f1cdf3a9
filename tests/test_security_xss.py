"""Stored XSS, tried as an attacker whose jobs are captured: job names, users, commands, tags, git
commits and paths that hold script payloads are captured (`provenance run`, extended attributes) or
sent as events; every page and report is opened in headless Chromium, twice: as served (with its
Content-Security-Policy) and with the CSP bypassed, so that escaping alone is shown to hold. No
payload may run, and no page may carry an element or attribute a payload made.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from provenance.access import AccessStore
from tests.servers import free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason="Debian's chromium is not installed (scripts/test.sh installs it as root)")

# each sets window.__xss when it runs; one payload per way markup could be made of a string
PAYLOADS = [
    "<script>window.__xss='script'</script>",
    "<img src=x onerror=\"window.__xss='img'\">",
    "\"><svg onload=\"window.__xss='svg'\">",
    "'><iframe srcdoc=\"<script>parent.__xss='iframe'</script>\">",
    "[click](javascript:window.__xss='md-link')",
    "<a href=\"javascript:window.__xss='href'\">x</a>",
    "{{7*7}}<style>@import 'javascript:alert(1)'</style>",
]
BAD_NAME = "payload <script>window.__xss='name'</script>"


def _cli(home: Path, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    r = subprocess.run([sys.executable, "-m", "provenance.cli", "--home", str(home), *args], capture_output=True,
                       text=True, timeout=180, env={**os.environ, **(env or {})}, cwd=cwd)
    assert r.returncode == 0, r.stderr
    return r.stdout + r.stderr


@pytest.fixture(scope="module")
def poisoned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    root = tmp_path_factory.mktemp("xss")
    home, work = root / "home", root / "work"
    (work / "data" / "raw").mkdir(parents=True)
    (work / "models" / "m" / "1").mkdir(parents=True)
    raw = work / "data" / "raw" / "people <b onmouseover=x>bold.csv"
    raw.write_text("name\nAda\n")
    try:  # a tag from an extended attribute, as fanotify or the audit hook captures it
        os.setxattr(raw, "user.prov.note", PAYLOADS[1].encode())
    except OSError:
        pass
    script = work / "job.py"
    script.write_text("import shutil, sys\nshutil.copyfile(sys.argv[1], sys.argv[2])\n")
    model = work / "models" / "m" / "1" / "model.pkl"
    # a captured run: its name, its user (from LOGNAME) and its command carry payloads
    _cli(home, "run", "--capture", "audit-hook", "--name", BAD_NAME, "--project", "xss", "--quiet", "--",
         sys.executable, str(script), str(raw), str(model), PAYLOADS[0],
         env={"LOGNAME": "eve<img src=x onerror=\"window.__xss='user'\">", "USER": "eve"}, cwd=work)
    # what only events can carry: a git commit, tag values, a path and an OpenLineage-style job name
    events = [{"source": "t", "kind": "app", "op": "started", "ts": 1_780_000_000_000, "app_id": "xss_app_2",
               "user": PAYLOADS[2], "attrs": {"name": PAYLOADS[4], "git_commit": PAYLOADS[3], "project": "xss",
                                               "command": [PAYLOADS[5], PAYLOADS[6]]}},
              {"source": "t", "kind": "file", "op": "read", "ts": 1_780_000_001_000, "app_id": "xss_app_2",
               "uri": str(model)},
              {"source": "t", "kind": "file", "op": "create", "ts": 1_780_000_002_000, "app_id": "xss_app_2",
               "uri": str(work / "serving" / "svc <svg onload=x>" / "model.pkl")},
              *({"source": "t", "kind": "tag", "op": "set", "ts": 1_780_000_003_000, "uri": str(raw),
                 "attrs": {"key": f"k{i}", "value": p}} for i, p in enumerate(PAYLOADS)),
              {"source": "t", "kind": "tag", "op": "set", "ts": 1_780_000_003_000, "uri": str(raw),
               "attrs": {"key": "pii", "value": "true"}}]
    feed = root / "events.jsonl"
    feed.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    _cli(home, "ingest", str(feed))
    access = AccessStore(home / "access.db")
    _, token = access.create_token("auditor", admin=True)
    access.close()
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "provenance.cli", "--home", str(home), "serve", "--port",
                             str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2):
                break
        except OSError:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "serve exited"
            time.sleep(0.2)
    app_ids = json.loads(urllib.request.urlopen(urllib.request.Request(
        base + "/api/apps", headers={"Authorization": f"Bearer {token}"})).read())["apps"]
    yield {"base": base, "token": token, "raw": str(raw), "model": str(model),
           "apps": ",".join(a["app_id"] for a in app_ids)}
    proc.terminate()
    proc.wait(timeout=60)
    if proc.stderr:
        proc.stderr.close()


def _pages(p: dict[str, str]) -> list[str]:
    q = urllib.parse.quote
    pages = ["/", "/?q=payload", "/?q=" + q("<script>"), f"/ui/artifact?uri={q(p['raw'])}",
             f"/ui/artifact?uri={q(p['model'])}&direction=both&depth=5", f"/ui/reports/audit?uri={q(p['model'])}",
             f"/ui/reports/gdpr?uri={q(p['raw'])}", f"/api/reports/audit?uri={q(p['model'])}&format=html",
             f"/api/reports/gdpr?uri={q(p['raw'])}&format=html", f"/ui/graph?uri={q(p['raw'])}&direction=down",
             "/ui/user/eve", "/ui/user/" + q(PAYLOADS[2], safe=""), "/ui/login?next=" + q("javascript:alert(1)"),
             "/ui/artifact?uri=" + q("/no/such/<script>x</script>")]
    pages += [f"/ui/app/{q(a, safe='')}" for a in p["apps"].split(",")]
    return pages


@pytest.mark.parametrize("bypass_csp", [False, True], ids=["with-csp", "escaping-alone"])
def test_no_payload_runs_on_any_page(poisoned: dict[str, str], bypass_csp: bool) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        context = browser.new_context(bypass_csp=bypass_csp)
        context.add_cookies([{"name": "prov_token", "value": poisoned["token"], "url": poisoned["base"]}])
        page = context.new_page()
        blocked: list[str] = []
        page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        visited = 0
        for path in _pages(poisoned):
            response = page.goto(poisoned["base"] + path)
            assert response is not None and response.status < 500, path
            visited += response.status == 200
            page.wait_for_load_state("networkidle")
            for link in page.locator("a[href]").all()[:50]:  # no link a payload made is a javascript: URL
                href = link.get_attribute("href") or ""
                assert not href.strip().lower().startswith(("javascript:", "data:")), (path, href)
            state = page.evaluate("""() => ({
                ran: window.__xss || (document.querySelector('iframe') ? 'iframe-present' : null),
                scripts: [...document.scripts].map(s => s.getAttribute('src') || 'inline'),
                handlers: [...document.querySelectorAll('*')].flatMap(e => [...e.attributes]
                    .filter(a => a.name.startsWith('on')).map(a => e.tagName + ' ' + a.name)),
                text: document.body.innerText })""")
            assert state["ran"] is None, (path, state["ran"])
            assert all(s.startswith("/static/") for s in state["scripts"]), (path, state["scripts"])
            assert state["handlers"] == [], (path, state["handlers"])
        # the payloads are on the pages as text: shown, not run (the test looked where they are)
        page.goto(poisoned["base"] + _pages(poisoned)[3])
        assert "window.__xss" in page.locator("body").inner_text()
        assert visited >= 12 and dialogs == []
        assert blocked == [], blocked  # not even an attempt the CSP had to stop
        browser.close()


def test_every_response_carries_the_security_headers(poisoned: dict[str, str]) -> None:
    req = urllib.request.Request(poisoned["base"] + "/ui/login")
    with urllib.request.urlopen(req) as r:
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
        assert r.headers["x-content-type-options"] == "nosniff" and "frame-ancestors 'none'" in csp


def test_a_foreign_host_and_a_cross_site_post_are_refused(poisoned: dict[str, str]) -> None:
    import http.client

    base = urllib.parse.urlsplit(poisoned["base"])
    conn = http.client.HTTPConnection(base.hostname or "", base.port)
    conn.request("GET", "/api/apps", headers={"Host": "attacker.example", "Authorization":
                                               f"Bearer {poisoned['token']}"})
    r = conn.getresponse()
    assert r.status == 403 and json.loads(r.read())["error"]["code"] == "bad_host"  # DNS rebinding
    conn.request("POST", "/api/events", body=b"[]", headers={"Origin": "http://attacker.example",
                                                            "Content-Type": "text/plain",
                                                            "Cookie": f"prov_token={poisoned['token']}"})
    r = conn.getresponse()
    assert r.status == 403 and json.loads(r.read())["error"]["code"] == "bad_origin"  # CSRF
    # another port of the same host is another site (another server there may be anyone's)
    conn.request("POST", "/api/events", body=b"[]", headers={"Origin": f"http://{base.hostname}:{base.port + 1}",
                                                            "Content-Type": "application/json",
                                                            "Cookie": f"prov_token={poisoned['token']}"})
    r = conn.getresponse()
    assert r.status == 403 and json.loads(r.read())["error"]["code"] == "bad_origin"
    conn.request("POST", "/api/events", body=b"[]", headers={"Origin": f"http://{base.hostname}:{base.port}",
                                                            "Content-Type": "application/json",
                                                            "Authorization": f"Bearer {poisoned['token']}"})
    r = conn.getresponse()
    assert r.status == 202, r.read()  # the page's own origin
    r.read()
    conn.request("POST", "/api/events", body=b"[]", headers={"Content-Type": "text/plain",
                                                            "Authorization": f"Bearer {poisoned['token']}"})
    r = conn.getresponse()
    assert r.status == 400 and "JSON" in json.loads(r.read())["error"]["message"]  # a form or text is not events
    conn.close()
