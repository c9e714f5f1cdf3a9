"""The web UI in headless Chromium (Debian's chromium, driven by Playwright) against a real
``provenance serve`` over the demo's data (``provenance demo --replay``: the bundled loan pipeline,
14 runs by two users over three months), tried as an auditor, a data protection officer and an engineer
would: every page at 1,400 and 400 px wide, the lineage explorer (zoom, pan, expand and collapse, the
view in the URL, time travel), the lists beside it, the reports (stamp, links, downloads, A4 print) and
the legibility of the drawn graph. Screenshots and PDFs go to ``test-output/ui/``.

Chromium comes from Debian (``scripts/test.sh`` installs it as root); without it the tests are skipped
and say why.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from provenance.access import AccessStore
from provenance.api.layout import Box, legibility
from tests.servers import start_serve, stop_serve

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parent.parent / "test-output" / "ui"
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason="Debian's chromium is not installed (scripts/test.sh installs it as root)")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
P = "/Projects/loan"
DEPLOYMENT, RAW = f"{P}/Deployments/loan_scoring", f"{P}/Raw/applications_2026_02.csv"
APP = "application_1772442000000_"
q = urllib.parse.quote


def serve(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    return start_serve(home)


def stop(proc: subprocess.Popen[bytes]) -> None:
    stop_serve(proc)


def token_for(home: Path, user: str) -> str:
    access = AccessStore(home / "access.db")
    _, token = access.create_token(user, admin=True)
    access.close()
    return token


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    home = tmp_path_factory.mktemp("ui") / "home"
    subprocess.run([sys.executable, "-m", "provenance.cli", "--home", str(home), "demo", "--replay"],
                   check=True, capture_output=True, timeout=300)
    token = token_for(home, "auditor")
    proc, base = serve(home)
    yield base, token
    stop(proc)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def signed_in(browser: Any, server: tuple[str, str], width: int = 1400, **kw: Any) -> Any:
    base, token = server
    context = browser.new_context(viewport={"width": width, "height": 900}, accept_downloads=True, **kw)
    context.add_cookies([{"name": "prov_token", "value": token, "url": base}])
    page = context.new_page()
    page.errors = []  # console errors (a CSP violation is one) and uncaught exceptions
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    return page


def artifact_url(uri: str, **params: Any) -> str:
    return "/ui/artifact?" + urllib.parse.urlencode({"uri": uri, **params}, doseq=True)


def graph_ids(page: Any) -> list[str]:
    return sorted(page.evaluate(
        "() => [...document.querySelectorAll('#graph svg.lineage:not(.slice) g.node')].map(n => n.dataset.id)"))


def wait_state(page: Any, before: str) -> None:
    """Until the explorer has redrawn (its state attribute changes once the new picture is in)."""
    deadline = time.monotonic() + 15
    while page.get_attribute("#graph", "data-state") == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert page.get_attribute("#graph", "data-state") != before, "the explorer did not redraw"
    page.wait_for_selector("#graph:not([aria-busy])")


# -- every page at two widths ---------------------------------------------------------------------------
PAGES = [("landing", "/", 200, "Most used datasets"), ("search", "/?q=loan", 200, "result(s)"),
         ("search-facet", "/?q=loan&type=model", 200, "type: model"),
         ("artifact", artifact_url(DEPLOYMENT, depth=10), 200, "Made from"),
         ("artifact-raw", artifact_url(RAW, direction="down", depth=10), 200, "Used by"),
         ("run", f"/ui/app/{APP}0012", 200, "Reproducibility"), ("user", "/ui/user/bob", 200, "read and wrote"),
         ("audit", f"/ui/reports/audit?uri={q(DEPLOYMENT)}", 200, "How it was made"),
         ("gdpr", f"/ui/reports/gdpr?uri={q(RAW)}", 200, "Models and deployments that used it"),
         ("login", "/ui/login", 200, "Sign in"), ("past-the-end", "/ui/user/bob?offset=999", 200, "first page"),
         ("not-found", "/ui/artifact?uri=" + q("/no/such/thing.csv"), 404, "Not found"),
         ("no-page", "/ui/nothing-here", 404, "Not found"),
         ("bad-request", artifact_url(DEPLOYMENT, as_of="yesterday-ish"), 400, "Cannot answer that")]


@pytest.mark.parametrize("width", [1400, 400])
def test_every_page_at_two_widths(server: tuple[str, str], browser: Any, width: int) -> None:
    page = signed_in(browser, server, width)
    base = server[0]
    errors = []
    for name, path, status, text in PAGES:
        page.errors.clear()
        response = page.goto(base + path)
        assert response is not None and response.status == status, (name, response and response.status)
        page.wait_for_load_state("networkidle")
        assert text in page.locator("main").inner_text(), (name, text)
        # the page fits the window: nothing scrolls sideways
        assert page.evaluate("document.documentElement.scrollWidth") <= width, (name, width)
        if status != 200:
            assert page.locator("main a[href='/']").count() == 1, name  # a way back
        page.screenshot(path=str(SHOTS / f"{width}-{name}.png"), full_page=True)
        # the page's own status is reported as a console error; nothing else may be
        errors += [(name, e) for e in page.errors if f"status of {status} " not in e or status == 200]
    assert errors == []  # no script error, no CSP violation, no missing asset
    page.context.close()


def test_sign_in_and_sign_out(server: tuple[str, str], browser: Any) -> None:
    base, token = server
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(base + "/ui/user/alice")
    assert "/ui/login" in page.url
    page.fill("input[name=token]", token)
    page.click("#sign-in")
    page.wait_for_url(base + "/ui/user/alice")
    assert "bob" in page.locator("main").inner_text() or page.locator("#user-runs").count() == 1
    page.click("#sign-out")
    page.wait_for_url("**/ui/login")
    page.go_back()  # Back shows nothing of what was seen signed in (no-store; the cache was cleared)
    page.wait_for_load_state()
    assert "/ui/login" in page.url and page.locator("#user-runs").count() == 0
    page.goto(base + "/")
    assert "/ui/login" in page.url  # the cookie is gone
    context.close()


def test_a_redraw_after_the_sign_in_ended_goes_to_the_sign_in_page(server: tuple[str, str], browser: Any) -> None:
    base, token = server
    page = signed_in(browser, server)
    page.goto(base + artifact_url(DEPLOYMENT, depth=2))
    page.wait_for_selector("#graph svg g.node")
    page.context.clear_cookies()  # the session ends (expired, signed out in another tab)
    page.select_option("select[name=direction]", "up")
    page.wait_for_url("**/ui/login?next=*")
    assert page.locator("#graph").count() == 0  # no sign-in page drawn inside the graph: the page went
    target = urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query)["next"][0]
    assert target.startswith("/ui/artifact?") and "direction=up" in target
    page.fill("input[name=token]", token)
    page.click("#sign-in")
    page.wait_for_url("**/ui/artifact?*")
    page.wait_for_selector("#graph svg g.node")
    assert "direction=up" in page.url and page.input_value("select[name=direction]") == "up"
    page.context.close()


# -- landing and search -------------------------------------------------------------------------------------
def test_landing_and_search(server: tuple[str, str], browser: Any) -> None:
    page = signed_in(browser, server)
    base = server[0]
    page.goto(base + "/")
    # no search dumped on an empty query: what is most used and recent, each a link
    assert page.locator(".card a").count() >= 10
    assert "GDPR report" in page.locator("main").inner_text()  # what search covers, and where a person is
    page.fill("header input[name=q]", "loan")
    page.press("header input[name=q]", "Enter")
    page.wait_for_selector(".hit-link")
    assert page.locator("a.sort.active").inner_text() == "relevance"
    page.locator("a.facet[data-facet=type]", has_text="model").click()
    page.wait_for_selector(".chip")
    assert "type: model" in page.locator(".chip").inner_text()
    assert page.locator("a.facet.active").count() == 1
    page.locator(".chip").click()  # the filter is cleared, the search kept
    page.wait_for_selector(".hit-link")
    assert page.locator(".chip").count() == 0 and "type=" not in page.url and "q=loan" in page.url
    assert page.locator(".hit-link").count() > 1
    page.goto(base + "/?q=" + q("Ada Lovelace"))
    assert "GDPR report" in page.locator(".hit.empty").inner_text()  # nothing found says why, and where to go
    page.context.close()


# -- the explorer ---------------------------------------------------------------------------------------------
def view_box(page: Any) -> list[float]:
    return [float(v) for v in (page.get_attribute("#graph", "data-view") or "0,0,0,0").split(",")]


def subject_box(page: Any) -> dict[str, float]:
    return page.evaluate("""() => {
        const r = document.querySelector('#graph svg.lineage:not(.slice) g.node.subject rect');
        return {x: +r.getAttribute('x'), y: +r.getAttribute('y'), w: +r.getAttribute('width'),
                h: +r.getAttribute('height')}; }""")


def test_explorer_zoom_pan_expand_and_url_state(server: tuple[str, str], browser: Any) -> None:
    page = signed_in(browser, server)
    base = server[0]
    page.goto(base + artifact_url(DEPLOYMENT, depth=10))
    page.wait_for_selector("#graph svg g.node")
    assert len(graph_ids(page)) >= 15
    # centred on its subject: the deployment is inside the first view
    x, y, w, h = view_box(page)
    s = subject_box(page)
    assert x <= s["x"] and s["x"] + s["w"] <= x + w and y <= s["y"] and s["y"] + s["h"] <= y + h
    page.screenshot(path=str(SHOTS / "explorer-1-initial.png"))
    # zoom: the buttons and the wheel
    page.click("#zoom-in")
    assert view_box(page)[2] < w
    w1 = view_box(page)[2]
    page.hover("#graph svg.lineage")
    page.mouse.wheel(0, 300)
    assert view_box(page)[2] > w1
    page.click("#fit")
    fit = view_box(page)
    assert fit[2] >= float(page.get_attribute("#graph svg.lineage", "data-width") or 0) - 1
    # pan: drag the background
    page.click("#zoom-in")
    page.click("#zoom-in")
    before = view_box(page)
    box = page.locator("#graph").bounding_box()
    page.mouse.move(box["x"] + 40, box["y"] + box["height"] - 30)
    page.mouse.down()
    page.mouse.move(box["x"] + 240, box["y"] + box["height"] - 60, steps=8)
    page.mouse.up()
    after = view_box(page)
    assert after[0] < before[0] and after[2] == pytest.approx(before[2])
    page.screenshot(path=str(SHOTS / "explorer-2-zoomed-panned.png"))
    # the view in the URL: direction and depth
    state = page.get_attribute("#graph", "data-state") or ""
    page.select_option("select[name=direction]", "up")
    wait_state(page, state)
    assert "direction=up" in page.url and "depth=10" in page.url
    assert "direction=up" not in (page.get_attribute("#audit-link", "href") or "")
    assert "depth=10" in (page.get_attribute("#audit-link", "href") or "")  # carried into the reports
    for export in ("#prov-link", "#graphml-link"):  # and into the exports, with the direction
        href = page.get_attribute(export, "href") or ""
        assert "direction=up" in href and "depth=10" in href, href
    # expand a node's neighbours by clicking, and collapse them again
    state = page.get_attribute("#graph", "data-state") or ""  # (before the fill: typing may redraw at once)
    page.fill("input[name=depth]", "2")
    page.locator("input[name=depth]").dispatch_event("change")
    wait_state(page, state)
    small = graph_ids(page)
    assert f"app:{APP}0013" not in small  # the bias evaluation read the model: not upstream of the deployment
    model = next(i for i in small if "Models/loan_model@" in i)
    state = page.get_attribute("#graph", "data-state") or ""
    page.locator(f"#graph svg.lineage:not(.slice) g.toggle[data-node='{model}']").click()
    wait_state(page, state)
    expanded = graph_ids(page)
    assert f"app:{APP}0013" in expanded and set(small) < set(expanded)
    assert "expand=" in page.url
    page.screenshot(path=str(SHOTS / "explorer-3-expanded.png"))
    # the URL gives the same view to whoever opens it
    url = page.url
    other = signed_in(browser, server)
    other.goto(url)
    other.wait_for_selector("#graph svg g.node")
    assert graph_ids(other) == expanded and other.input_value("select[name=direction]") == "up"
    other.context.close()
    state = page.get_attribute("#graph", "data-state") or ""
    page.locator(f"#graph svg.lineage:not(.slice) g.toggle[data-node='{model}']").click()
    wait_state(page, state)
    assert graph_ids(page) == small and "expand=" not in page.url
    # logs & code, grouped runs
    state = page.get_attribute("#graph", "data-state") or ""
    page.check("input[name=aux]")
    wait_state(page, state)
    assert "aux=1" in page.url
    # a depth out of range is said, not silently changed
    page.fill("input[name=depth]", "0")
    page.locator("input[name=depth]").dispatch_event("input")
    assert "1 to 20" in page.locator("#depth-msg").inner_text()
    page.goto(base + artifact_url(DEPLOYMENT, depth=25))
    assert "showing depth 20" in page.locator(".banner.notice").inner_text()
    page.goto(base + artifact_url(DEPLOYMENT, depth=""))
    assert page.input_value("input[name=depth]") == "3"  # an empty box: the default, not an error
    assert page.errors == [], page.errors
    page.context.close()


def test_time_travel_is_in_the_url_and_the_page_follows(server: tuple[str, str], browser: Any) -> None:
    page = signed_in(browser, server)
    base = server[0]
    page.goto(base + artifact_url(DEPLOYMENT, depth=10))
    now_ids = graph_ids(page)
    assert any("0014" in i for i in now_ids)
    marks = [int(m) for m in (page.get_attribute("#asof", "data-marks") or "").split(",")]
    assert len(marks) >= 10 and marks == sorted(marks)  # the slider snaps to version events
    # the last version event before the run that made the second deployment started
    started = int(datetime(2026, 4, 2, 21, 10, 43, tzinfo=UTC).timestamp() * 1000)
    second = max(i for i, m in enumerate(marks) if m < started)
    page.evaluate(f"""() => {{ const s = document.getElementById('asof'); s.value = '{second}';
                      s.dispatchEvent(new Event('input', {{bubbles: true}}));
                      s.dispatchEvent(new Event('change', {{bubbles: true}})); }}""")
    page.wait_for_url("**as_of=*")
    page.wait_for_selector("#past-banner")
    assert "Viewing as of" in page.locator("#past-banner").inner_text()
    then_ids = graph_ids(page)
    assert then_ids and not any("0014" in i for i in then_ids) and any("0008" in i for i in then_ids)
    # the header and the tables follow: one version of the deployment then
    assert page.locator("#versions tbody tr").count() == 1
    # the reports carry the time
    as_of = urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query)["as_of"][0]
    assert q(as_of, safe="") in (page.get_attribute("#audit-link", "href") or "").replace(":", "%3A")
    page.screenshot(path=str(SHOTS / "explorer-4-as-of.png"), full_page=True)
    # the date box: a time typed in the reader's zone
    page.fill("#asof-date", "2026-03-02T12:00:00")
    page.locator("#asof-date").dispatch_event("change")
    page.wait_for_load_state()
    page.wait_for_selector("#past-banner")
    assert "did not exist yet" in page.locator("main").inner_text()  # the deployment came on 2026-03-03
    page.click("#asof-now")
    page.wait_for_selector("#graph svg g.node")
    assert "as_of" not in page.url and page.locator("#past-banner").count() == 0
    # local time on the page, the exact UTC time on hover
    t = page.locator("#versions time").first
    assert (t.get_attribute("title") or "").startswith("UTC 2026-")
    page.context.close()


def test_graph_times_are_in_the_readers_zone_like_the_tables(server: tuple[str, str], browser: Any) -> None:
    page = signed_in(browser, server, timezone_id="America/New_York")
    base = server[0]
    run = f"app:{APP}0012"  # started 2026-04-02 19:09:09 UTC: 15:09 in New York (EDT)
    for url in (artifact_url(DEPLOYMENT, depth=10), f"/ui/reports/audit?uri={q(DEPLOYMENT)}"):
        page.goto(base + url)
        page.wait_for_selector("svg.lineage g.node")
        when = page.locator(f"svg.lineage:not(.slice) g.node[data-id='{run}'] tspan.when").text_content()
        assert when == "2026-04-02 15:09 EDT", (url, when)
        # nothing in the picture is left in UTC without saying it
        subs = page.locator("svg.lineage:not(.slice) g.node text").all_text_contents()
        assert not any(re.search(r"\d{2}:\d{2}(?! (EDT|EST|UTC))", t) for t in subs), subs
    page.goto(base + f"/ui/app/{APP}0012")
    assert "15:09:09 (America/New_York)" in page.locator("#run-facts").inner_text()
    page.context.close()


def test_used_by_made_from_and_versions_link_sort_and_export(server: tuple[str, str], browser: Any) -> None:
    page = signed_in(browser, server)
    base = server[0]
    page.goto(base + artifact_url(RAW))
    rows = page.locator("#used-by tbody tr")
    assert rows.count() == 4  # loan_model v1, v2 and the two deployments
    text = page.locator("#used-by").inner_text()
    assert "loan_scoring" in text and "yes" in text  # deployed now
    assert page.locator("#used-by tbody a").count() == 4
    page.locator("#used-by th", has_text="depth").click()
    depths = [int(r) for r in page.locator("#used-by tbody tr td:nth-child(4)").all_inner_texts()]
    assert depths == sorted(depths)
    page.locator("#used-by th", has_text="depth").click()
    assert [int(r) for r in page.locator("#used-by tbody tr td:nth-child(4)").all_inner_texts()] == sorted(
        depths, reverse=True)
    with page.expect_download() as dl:
        page.locator("a.download").first.click()
    body = Path(dl.value.path()).read_text()
    assert body.splitlines()[0].startswith("artifact,type,version,depth,deployed_now") and "loan_scoring" in body
    # the versions table links each version's lineage, its creator and its readers
    page.goto(base + artifact_url(f"{P}/Models/loan_model"))
    links = page.locator("#versions tbody tr").first.locator("a")
    hrefs = [links.nth(i).get_attribute("href") or "" for i in range(links.count())]
    assert any("version=" in h for h in hrefs) and any("/ui/app/" in h for h in hrefs)
    assert sum("/ui/app/" in h for h in hrefs) >= 2  # the creator and at least one reader
    made = page.locator("#made-from tbody a")
    assert made.count() >= 3
    page.context.close()


# -- run and user pages -------------------------------------------------------------------------------------
def test_run_and_user_pages_are_complete(server: tuple[str, str], browser: Any) -> None:
    page = signed_in(browser, server)
    base = server[0]
    page.goto(base + f"/ui/app/{APP}0012")
    facts = page.locator("#run-facts").inner_text()
    for word in ("git commit", "9d4b7f1", "environment", "host", "working directory", "duration", "command",
                 "python train.py"):
        assert word in facts, word
    assert page.locator("#other-runs a[href*='0006']").count() == 1  # the other run of the job
    assert "differs" in page.locator("main").inner_text() and page.locator("#repro-warnings li").count() >= 1
    page.goto(base + "/ui/user/bob")
    assert page.locator("#user-runs tbody tr").count() >= 6
    touched = page.locator("#user-touches").inner_text()
    assert "read" in touched and "wrote" in touched
    assert page.locator("#user-touches tbody a[href*='/ui/artifact']").count() >= 6
    page.goto(base + "/ui/user/bob?offset=4")  # paged: the runs from the fifth on, a way to the newer ones
    assert page.locator("#user-runs tbody tr").count() == 2 and page.locator("#prev-page").count() == 1
    assert "5–6 of 6" in page.locator("main").inner_text()
    page.context.close()


def test_words_do_not_break_and_same_names_can_be_told_apart(server: tuple[str, str], browser: Any) -> None:
    base = server[0]
    for width in (1400, 400):
        page = signed_in(browser, server, width)
        for path in (f"/ui/app/{APP}0012", "/ui/user/bob", artifact_url(f"{P}/Models/loan_model"), "/",
                     f"/ui/reports/audit?uri={q(DEPLOYMENT)}"):
            page.goto(base + path)
            # a word of letters only (a state, a type, a heading) is on one line in its cell
            broken = page.evaluate("""() => [...document.querySelectorAll('td, th')].flatMap(c => {
                const out = [];
                const walk = document.createTreeWalker(c, NodeFilter.SHOW_TEXT);
                for (let n = walk.nextNode(); n; n = walk.nextNode()) {
                  for (const m of n.textContent.matchAll(/[A-Za-z]{4,}/g)) {
                    const r = document.createRange(); r.setStart(n, m.index); r.setEnd(n, m.index + m[0].length);
                    if (r.getClientRects().length > 1) out.push(m[0]);
                  }
                }
                return out; })""")
            assert broken == [], (width, path, broken[:10])
            assert page.evaluate("document.documentElement.scrollWidth") <= width, (width, path)
        page.context.close()
    page = signed_in(browser, server)
    page.goto(base + artifact_url(f"{P}/Models/loan_model"))
    made = page.locator("#made-from tbody tr td:first-child")
    names = made.all_inner_texts()
    # two feature groups' files, three raw files: each says its folder, and the full URI on hover
    assert all(" in /" in n or " in …/" in n for n in names), names
    versions = page.locator("#made-from tbody tr td:nth-child(3)").all_inner_texts()
    assert len(set(zip(names, versions, strict=True))) == len(names), names  # each item, version told apart
    assert all((a.get_attribute("title") or "").startswith("file:///") for a in made.locator("a").all())
    page.goto(base + "/")
    used = page.locator(".card li a[title]")
    assert used.count() >= 3 and all(" in " in t for t in page.locator(".card ol li").all_inner_texts())
    page.context.close()


def test_paging_past_the_end_says_so_and_leads_back(server: tuple[str, str], browser: Any) -> None:
    page = signed_in(browser, server)
    page.goto(server[0] + "/ui/user/bob?offset=999")
    text = page.locator("main").inner_text()
    assert "1000–999" not in text and "There is no run 1000" in text and "6 run(s)" in text
    page.click("#first-page")
    page.wait_for_url("**/ui/user/bob")
    assert "1–6 of 6" in page.locator("main").inner_text()
    page.context.close()


# -- the reports ----------------------------------------------------------------------------------------------
def test_reports_are_stamped_linked_and_downloadable(server: tuple[str, str], browser: Any) -> None:
    page = signed_in(browser, server)
    base = server[0]
    page.goto(base + artifact_url(DEPLOYMENT))
    page.click("#audit-link")
    page.wait_for_selector("#stamp")
    stamp = page.locator("#stamp").inner_text()
    assert "Generated" in stamp and "auditor" in stamp and "As of" in stamp and "now" not in stamp
    permalink = page.locator("#stamp a").first.get_attribute("href") or ""
    assert "as_of=" in permalink and permalink.startswith(base)
    # every URI and run id in the report is a link
    for cell in page.locator("table.report-table td").all():
        text = cell.inner_text()
        if text.startswith("file://") or re.fullmatch(r"application_\d+_\d+", text):
            assert cell.locator("a").count() == 1, text
    downloads = {}
    for fmt in ("pdf", "md", "json"):
        with page.expect_download() as dl:
            page.click(f"#dl-{fmt}")
        path = SHOTS / f"audit-download.{fmt}"
        dl.value.save_as(str(path))
        downloads[fmt] = path.read_bytes()
    assert downloads["pdf"].startswith(b"%PDF") and len(downloads["pdf"]) > 5000
    assert downloads["md"].decode().startswith("# Audit: loan_scoring")
    answer = json.loads(downloads["json"])
    assert answer["query"] == "upstream" and answer["as_of"] and answer["target"]["uri"].endswith("loan_scoring")
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", "-layout", str(SHOTS / "audit-download.pdf"), "-"], capture_output=True,
                              text=True, check=True).stdout
        assert "Audit: loan_scoring" in text and "Generated by" in text and "loan_model" in text
    # a report's picture has no dead controls and no instruction for controls it does not have
    assert page.locator(".report-graph .toggle").count() == 0
    assert "tick" not in page.locator(".report-graph").inner_text()
    # the GDPR report names the file and gives evidence paths as step lists
    page.goto(base + f"/ui/reports/gdpr?uri={q(RAW)}")
    assert "applications_2026_02.csv" in page.locator("h1").inner_text()
    steps = page.locator("ol.steps")
    assert steps.count() == 4 and steps.first.locator("li").count() >= 5
    assert steps.first.locator("li a").count() >= 5
    page.context.close()


@pytest.mark.parametrize("kind,uri", [("audit", DEPLOYMENT), ("gdpr", RAW)])
def test_reports_print_on_a4_with_every_column(server: tuple[str, str], browser: Any, kind: str, uri: str) -> None:
    page = signed_in(browser, server)
    base = server[0]
    page.goto(base + f"/ui/reports/{kind}?uri={q(uri)}")
    page.wait_for_selector("#stamp")
    pdf = SHOTS / f"{kind}-printed-a4.pdf"
    page.pdf(path=str(pdf), prefer_css_page_size=True, print_background=True)
    assert pdf.read_bytes().startswith(b"%PDF")
    # A4 landscape less 10 mm margins is 277 mm: 1047 CSS px; laid out for print at that width, no cell of
    # any table ends past the page's right edge (Chromium prints what the layout puts there, and cuts the rest)
    page.set_viewport_size({"width": 1047, "height": 740})
    page.emulate_media(media="print")
    overflow = page.evaluate("""() => [...document.querySelectorAll('table th, table td')]
        .filter(c => c.getBoundingClientRect().right > 1047.5 || c.getBoundingClientRect().width < 8)
        .map(c => c.textContent.slice(0, 40))""")
    assert overflow == []
    widths = page.evaluate("""() => [...document.querySelectorAll('svg.lineage')]
        .filter(s => s.getBoundingClientRect().width > 0).map(s => s.getBoundingClientRect().width)""")
    assert widths and max(widths) <= 1047.5  # the picture is drawn to fit (or in parts)
    page.screenshot(path=str(SHOTS / f"{kind}-print-layout.png"), full_page=True)
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                              check=True).stdout
        heads = page.evaluate("() => [...document.querySelectorAll('table.report-table th')].map(t => t.textContent)")
        for head in set(heads):  # every column's heading is on the printed pages (a heading may wrap)
            assert all(word in text for word in head.split()), head
    page.context.close()


# -- legibility of the drawn graph ------------------------------------------------------------------------------
def _sample(d: str) -> list[tuple[float, float]]:
    """The points of a drawn edge (M, L and cubic C commands, curves sampled)."""
    tokens = re.findall(r"[MLC]|-?\d+(?:\.\d+)?", d)
    pts: list[tuple[float, float]] = []
    i, cmd = 0, ""
    while i < len(tokens):
        if tokens[i] in "MLC":
            cmd = tokens[i]
            i += 1
        if cmd in ("M", "L"):
            pts.append((float(tokens[i]), float(tokens[i + 1])))
            i += 2
        else:
            c = [float(t) for t in tokens[i:i + 6]]
            (x0, y0), i = pts[-1], i + 6
            for k in range(1, 21):
                t = k / 20
                a, b, cc, dd = (1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t ** 2, t ** 3
                pts.append((a * x0 + b * c[0] + cc * c[2] + dd * c[4], a * y0 + b * c[1] + cc * c[3] + dd * c[5]))
    return pts


def drawn_legibility(page: Any) -> Any:
    drawn = page.evaluate("""() => { const svg = document.querySelector('#graph svg.lineage:not(.slice)');
        return {nodes: [...svg.querySelectorAll('g.node')].map(g => { const r = g.querySelector('rect');
                   return {id: g.dataset.id, x: +r.getAttribute('x'), y: +r.getAttribute('y'),
                           w: +r.getAttribute('width'), h: +r.getAttribute('height')}; }),
                edges: [...svg.querySelectorAll('path.edge')].map(p => ({s: p.dataset.source, t: p.dataset.target,
                                                                         d: p.getAttribute('d')}))}; }""")
    boxes = {n["id"]: Box(n["x"], n["y"], n["w"], n["h"]) for n in drawn["nodes"]}
    routes = [(e["s"], e["t"], _sample(e["d"])) for e in drawn["edges"]]
    return legibility(boxes, routes)


def check_legibility(page: Any, url: str, name: str) -> Any:
    page.goto(url)
    page.wait_for_selector("#graph svg g.node")
    figures = drawn_legibility(page)
    assert figures.through_nodes == 0 and figures.overlaps == 0, figures  # no edge through a box it does not join
    x, y, w, h = view_box(page)
    s = subject_box(page)  # the subject is inside the first view
    assert x <= s["x"] and s["x"] + s["w"] <= x + w and y <= s["y"] and s["y"] + s["h"] <= y + h
    page.screenshot(path=str(SHOTS / f"legibility-{name}.png"))
    return figures


def test_the_demo_deployment_at_depth_10_is_legible(server: tuple[str, str], browser: Any) -> None:
    page = signed_in(browser, server)
    base = server[0]
    for name, params in [("deployment", {"depth": 10}), ("deployment-all", {"depth": 10, "aux": 1}),
                         ("deployment-grouped", {"depth": 10, "group": 1}),
                         ("raw-down", {"depth": 10, "direction": "down"})]:
        uri = RAW if name == "raw-down" else DEPLOYMENT
        figures = check_legibility(page, base + artifact_url(uri, **params), name)
        assert figures.nodes >= 10 and figures.edges >= 9
        if name == "deployment":
            assert figures.crossings == 0, figures
    page.context.close()


def test_the_captured_demo_deployment_is_legible(tmp_path: Path, browser: Any) -> None:
    """The same on a real demo run (the pipeline built and captured, not replayed), and its run page shows what
    the launcher recorded."""
    for module in ("pandas", "sklearn", "deltalake"):
        pytest.importorskip(module)
    home = tmp_path / "home"
    r = subprocess.run([sys.executable, "-m", "provenance.cli", "--home", str(home), "demo", "--dir",
                        str(tmp_path / "demo")], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    token = token_for(home, "auditor")
    proc, base = serve(home)
    try:
        page = signed_in(browser, (base, token))
        deployment = str(tmp_path / "demo" / "serving" / "loan_scoring")
        check_legibility(page, base + artifact_url(deployment, depth=10), "captured-deployment")
        check_legibility(page, base + artifact_url(deployment, depth=10, aux=1), "captured-deployment-all")
        run = next(i for i in graph_ids(page) if i.startswith("app:"))
        page.goto(base + "/ui/app/" + q(run.removeprefix("app:"), safe=""))
        facts = page.locator("#run-facts").inner_text()
        assert "CPU time" in facts and " s user" in facts and str(tmp_path / "demo") in facts
        assert "Packages (" in page.locator("main").inner_text()
        page.screenshot(path=str(SHOTS / "captured-run.png"), full_page=True)
        page.context.close()
    finally:
        stop(proc)
