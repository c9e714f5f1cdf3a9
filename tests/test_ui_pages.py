"""The pages without a browser (TestClient over the example pipeline, signed in with a token cookie):
what a signed-out fetch and Back after signing out get, the report downloads (PDF text, stamps), time
travel's bounds and links, and the run and user pages' lists."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from provenance.access import AccessStore
from provenance.api.app import create_app
from provenance.config import load_settings
from tests.conftest import EXAMPLE

P = "/Projects/loan"
DEPLOYMENT, RAW = f"{P}/Deployments/loan_scoring", f"{P}/Raw/applications_2026_02.csv"
APP = "application_1772442000000_"
q = urllib.parse.quote


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str]]:
    home = tmp_path_factory.mktemp("pages") / "home"
    access = AccessStore(home / "access.db")
    _, token = access.create_token("auditor", admin=True)
    access.close()
    with TestClient(create_app(load_settings(home=home, server={"allowed_hosts": ["testserver"]}))) as client:
        r = client.post("/api/events", content=EXAMPLE.read_bytes(),
                        headers={"authorization": f"Bearer {token}", "content-type": "application/x-ndjson"})
        assert r.status_code == 202
        client.cookies.set("prov_token", token)
        yield client, token
        client.cookies.clear()


def signed_out(client: TestClient, path: str) -> Any:
    return client.get(path, headers={"cookie": "prov_token=prov_not_a_token"}, follow_redirects=False)


# -- signed out -----------------------------------------------------------------------------------------------
def test_a_signed_out_graph_fetch_is_a_401_not_the_sign_in_page(ui: tuple[TestClient, str]) -> None:
    c, _ = ui
    r = signed_out(c, "/ui/graph?uri=" + q(DEPLOYMENT))
    assert r.status_code == 401 and r.headers["content-type"].startswith("text/plain")
    assert "signed out" in r.text and "<form" not in r.text
    page = signed_out(c, "/ui/artifact?uri=" + q(DEPLOYMENT))  # a page still goes to the sign-in page
    assert page.status_code == 303 and page.headers["location"].startswith("/ui/login?next=")


def test_answers_that_depend_on_the_user_are_not_stored_and_sign_out_clears_the_cache(
        ui: tuple[TestClient, str]) -> None:
    c, _ = ui
    u = q(DEPLOYMENT)
    for path in ("/", f"/ui/artifact?uri={u}", f"/ui/graph?uri={u}", f"/ui/app/{APP}0012", "/ui/user/bob",
                 f"/ui/reports/audit?uri={u}", f"/ui/reports/audit.json?uri={u}", f"/api/artifacts?uri={u}",
                 "/ui/login", "/ui/nothing-here"):
        r = c.get(path, follow_redirects=False)
        assert r.headers.get("cache-control") == "no-store", path
        assert "content-security-policy" in r.headers, path  # the other headers stay
    assert signed_out(c, "/ui/user/bob").headers.get("cache-control") == "no-store"
    static = c.get("/static/app.css")
    assert static.status_code == 200 and "no-store" not in static.headers.get("cache-control", "")
    out = c.post("/ui/logout", follow_redirects=False, headers={"cookie": "prov_token=x"})
    assert out.status_code == 303 and out.headers["clear-site-data"] == '"cache", "cookies"'
    assert out.headers["cache-control"] == "no-store"


# -- the PDF ----------------------------------------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) is not installed")
@pytest.mark.parametrize("kind,uri", [("audit", DEPLOYMENT), ("gdpr", RAW)])
def test_the_pdf_text_holds_the_exact_uris_and_run_ids(ui: tuple[TestClient, str], tmp_path: Path, kind: str,
                                                      uri: str) -> None:
    c, _ = ui
    r = c.get(f"/ui/reports/{kind}.pdf?uri=" + q(uri))
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    (tmp_path / "r.pdf").write_bytes(r.content)
    text = subprocess.run(["pdftotext", str(tmp_path / "r.pdf"), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "\u200b" not in text and "\u00ad" not in text  # no invisible characters in what is copied
    assert "file://" + uri in text
    runs = {f"{APP}{n:04d}" for n in range(1, 15)}
    found = set(re.findall(r"application_\d+_\d+", text))
    assert found and found <= runs  # every run id in it whole (none cut into "application_" and the rest)
    assert "application_\n" not in text
    assert f"{APP}0012" in found if kind == "audit" else f"{APP}0008" in found


# -- time travel ------------------------------------------------------------------------------------------------
def test_a_future_as_of_is_shown_as_of_now_and_said_on_pages_and_reports(ui: tuple[TestClient, str]) -> None:
    c, _ = ui
    u = q(DEPLOYMENT)
    page = c.get(f"/ui/artifact?uri={u}&as_of=2099-01-01")
    assert page.status_code == 200 and "is in the future: shown as of now" in page.text
    assert 'id="past-banner"' not in page.text and "2099" not in page.text.split("is in the future")[1]
    report = c.get(f"/ui/reports/audit?uri={u}&as_of=2099-01-01")
    assert report.status_code == 200 and "is in the future" in report.text
    stamp = report.text[report.text.index('id="stamp"'):report.text.index('id="downloads"')]
    as_of = re.search(r"<dt>As of</dt><dd><time datetime=\"([^\"]+)\"", stamp)
    assert as_of and not as_of.group(1).startswith("2099")  # the report is as of when it was made
    assert "as_of=2099" not in stamp and "as_of=20" in stamp  # its permalink and downloads: that time
    answer = c.get(f"/ui/reports/audit.json?uri={u}&as_of=2099-01-01").json()
    assert answer["as_of"] == answer["generated_at"] and "2099" not in answer["permalink"]
    assert any("is in the future" in n for n in answer["notes"])
    assert "2099" not in c.get(f"/ui/reports/audit.md?uri={u}&as_of=2099-01-01").text
    past = c.get(f"/ui/reports/gdpr?uri={q(RAW)}&as_of=2026-03-10T00:00:00Z")
    assert "is in the future" not in past.text and 'datetime="2026-03-10T00:00:00' in past.text


def test_links_of_a_view_in_the_past_keep_its_time(ui: tuple[TestClient, str]) -> None:
    c, _ = ui
    as_of = "2026-03-10T00:00:00.000Z"
    page = c.get("/ui/artifact?" + urllib.parse.urlencode({"uri": f"{P}/Models/loan_model", "as_of": as_of,
                                                           "direction": "up", "depth": "5"})).text
    hrefs = [html.unescape(h) for h in re.findall(r'href="([^"]+)"', page)]
    exports = [h for h in hrefs if h.startswith("/api/export/")]
    assert len(exports) == 2
    for h in exports:
        params = urllib.parse.parse_qs(urllib.parse.urlsplit(h).query)
        assert params["as_of"] == [as_of] and params["depth"] == ["5"] and params["direction"] == ["up"], h
    made = page[page.index('id="made-from"'):page.index("<h3>Versions")]
    links = [html.unescape(h) for h in re.findall(r'href="(/ui/artifact[^"]+)"', made)]
    assert links and all(f"as_of={q(as_of, safe='')}" in h for h in links)
    graph = page[page.index('id="graph"'):page.index('class="lists"')]
    nodes = [html.unescape(h) for h in re.findall(r'href="(/ui/artifact[^"]+)"', graph)]
    assert nodes and all("as_of=" in h for h in nodes)
    down = c.get("/ui/artifact?" + urllib.parse.urlencode({"uri": RAW, "as_of": as_of})).text
    used = down[down.index('id="used-by"'):down.index("<h3>Made from")]
    assert all("as_of=" in h for h in re.findall(r'href="(/ui/artifact[^"]+)"', used))
    assert re.findall(r'href="(/ui/artifact[^"]+)"', used)


# -- the run page -----------------------------------------------------------------------------------------------
def test_the_run_page_says_what_differs_from_the_previous_run(ui: tuple[TestClient, str]) -> None:
    c, _ = ui
    page = c.get(f"/ui/app/{APP}0012").text
    repro = html.unescape(re.sub(r"<[^>]+>", "", page[page.index('id="repro"'):page.index("<h3>Other runs")]))
    repro = " ".join(repro.split())
    assert "file:///Projects/loan/loan_Training_Datasets/loan_td: v1 → v2" in repro  # the input, its versions
    assert "5c1e0a2 → 9d4b7f1" in repro  # the code
    assert "python train.py --td loan_td_1" in repro and "python train.py --td loan_td_2" in repro  # both commands
    assert "sha256:3f9a1c0d6b2e → sha256:8b7e44aa9c01" in repro  # the environments
    assert "0 added" not in repro and "0 packages added" not in repro


def _run(app_id: str, ts: int, processes: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    end: dict[str, Any] = {"exit_code": 0, **({"processes": processes} if processes else {})}
    return [{"source": "t", "kind": "app", "op": "started", "ts": ts, "app_id": app_id, "user": "proc_tester",
             "attrs": {"name": "proc/job", "command": "python job.py"}},
            {"source": "t", "kind": "app", "op": "finished", "ts": ts + 5000, "app_id": app_id,
             "user": "proc_tester", "attrs": end}]


def test_the_run_page_lists_each_process_once_and_says_an_unrecorded_environment(
        ui: tuple[TestClient, str]) -> None:
    c, token = ui
    t0 = 1_790_000_000_000
    records = [  # what the capture sent: one process seen several times (pid 984), out of order, most not ended
        {"proc": "984.1", "pid": 984, "exe": "/usr/bin/python3", "argv": ["python", "job.py"], "start_ts": t0 + 300},
        {"proc": "984.1", "pid": 984, "start_ts": t0 + 100},
        {"proc": "990.7", "pid": 990, "exe": "/bin/sh", "argv": ["sh", "-c", "ls"], "start_ts": t0 + 200,
         "end_ts": t0 + 250},
        {"proc": "984.1", "pid": 984, "exe": "/usr/bin/python3", "argv": ["python", "job.py"], "start_ts": t0 + 400,
         "end_ts": t0 + 4000},
        {"proc": "984.1", "pid": 984, "start_ts": t0 + 150, "end_ts": t0 + 900},
    ]
    events = _run("proc_run_1", t0 - 86_400_000) + _run("proc_run_2", t0, records)
    r = c.post("/api/events", content="\n".join(json.dumps(e) for e in events).encode(),
               headers={"authorization": f"Bearer {token}", "content-type": "application/x-ndjson"})
    assert r.status_code == 202
    page = c.get("/ui/app/proc_run_2").text
    table = page[page.index('id="processes"'):]
    table = table[:table.index("</table>")]
    rows = re.findall(r"<tr><td>(\d+)</td>", table)
    assert rows == ["984", "990"]  # one row per process, by start
    first = table[table.index("<tr><td>984"):table.index("<tr><td>990")]
    assert "python job.py" in first and first.count("<time") == 2  # started and ended
    times = re.findall(r'datetime="([^"]+)"', first)
    from provenance.events.model import ms_to_iso
    assert times == [ms_to_iso(t0 + 100), ms_to_iso(t0 + 4000)]  # the earliest start, the latest end
    assert "Processes (2)" in page
    env = page[page.index('id="repro-env"'):]
    env = env[:env.index("</li>")]
    assert "not recorded" in env and "0 added" not in page and "0 packages added" not in page


# -- the report downloads -----------------------------------------------------------------------------------------
def test_markdown_and_json_downloads_are_stamped_and_linked(ui: tuple[TestClient, str]) -> None:
    c, _ = ui
    answer = c.get("/ui/reports/audit.json?uri=" + q(DEPLOYMENT)).json()
    assert answer["generated_by"] == "auditor" and answer["generated_at"].startswith("20")
    assert answer["as_of"] == answer["generated_at"]  # asked for now: as of the moment it was made
    link = urllib.parse.urlsplit(answer["permalink"])
    assert link.path == "/ui/reports/audit" and urllib.parse.parse_qs(link.query)["as_of"] == [answer["as_of"]]
    assert answer["target"]["uri"] == "file://" + DEPLOYMENT and answer["query"] == "upstream"
    text = c.get("/ui/reports/gdpr.md?uri=" + q(RAW) + "&as_of=2026-05-01T00:00:00Z").text
    head = text[:text.index("How each item is known")]
    assert "**As of**: 2026-05-01T00:00:00" in head and "**Generated**: " in head and " by auditor" in head
    assert re.search(r"\*\*Permalink\*\*: <http://testserver/ui/reports/gdpr\?[^>]*as_of=2026-05-01", head)
    # URIs and run ids are links to their pages
    assert "[file:///Projects/loan/Raw/applications\\_2026\\_02.csv](http://testserver/ui/artifact?uri=" in text \
        or f"[file://{RAW}](http://testserver/ui/artifact?uri=" in text
    assert re.search(rf"\[{APP}0012\]\(http://testserver/ui/app/{APP}0012\)", text)
    assert "\\[file" not in text and "\\[application" not in text  # no link printed as escaped text
    audit = c.get("/ui/reports/audit.md?uri=" + q(DEPLOYMENT)).text
    assert "\\[file" not in audit and "(from [file://" in audit


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) is not installed")
def test_the_html_and_pdf_reports_have_the_tier_key(ui: tuple[TestClient, str], tmp_path: Path) -> None:
    c, _ = ui
    page = c.get("/ui/reports/gdpr?uri=" + q(RAW)).text
    assert "How each item is known" in page and "possible items are reached through at least one run link" in page
    (tmp_path / "r.pdf").write_bytes(c.get("/ui/reports/gdpr.pdf?uri=" + q(RAW)).content)
    text = " ".join(subprocess.run(["pdftotext", str(tmp_path / "r.pdf"), "-"], capture_output=True, text=True,
                                   check=True).stdout.split())
    assert "How each item is known" in text and "certain items are reached only through exact links" in text
