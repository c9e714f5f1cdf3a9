"""Access control as an attacker tries it: project `loan` holds secret markers in every kind of string
(URIs, job names, users, tags, commands, git commits); `mallory` is a member of project `other` only.
Every GET route of the OpenAPI document, every page and every report format is called as mallory,
with ids of things she may see, may not see, and that do not exist:

- no response names a marker she did not send herself;
- asking for a hidden thing and for a thing that does not exist gets the same answer (status and body,
  once each id is replaced by a placeholder): existence does not leak either.
"""

from __future__ import annotations

import html
import itertools
import json
import re
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from provenance.access import AccessStore
from provenance.api.app import create_app
from provenance.config import load_settings

T0 = 1_780_000_000_000
MARK = "LOANSECRET"  # every string of project loan carries it; nothing else does
LOAN = "/Projects/loan"
OTHER = "/Projects/other"

LOAN_RAW = f"{LOAN}/Raw/{MARK}_people.csv"
LOAN_MODEL = f"{LOAN}/Models/{MARK}_model/1/model.pkl"
LOAN_FG = f"{LOAN}/loan_featurestore.db/{MARK}_features_1/part-0.parquet"
SHARED_OUT = f"/shared/{MARK}_written_by_loan.csv"  # no naming rule: the project of its creator (loan)
OTHER_RAW = f"{OTHER}/Raw/other_input.csv"
OTHER_MODEL = f"{OTHER}/Models/other_model/1/model.pkl"
PUBLIC = "/public/reference_table.csv"  # of no project: everyone's

LOAN_APPS = [f"{MARK}_ingest_1", f"{MARK}_train_1", f"{MARK}_cross_1"]
OTHER_APPS = ["other_train_1", "other_reader_1"]
LOAN_USER = f"{MARK.lower()}_user"


def _app(app_id: str, user: str, project: str | None, name: str, ts: int, command: str,
         commit: str) -> list[dict[str, Any]]:
    attrs: dict[str, Any] = {"name": name, "command": command, "git_commit": commit, "cwd": f"/Projects/{project}"
                             if project else "/tmp/work", "host": "h"}
    if project:
        attrs["project"] = project
    return [{"source": "t", "kind": "app", "op": "started", "ts": ts, "app_id": app_id, "user": user, "attrs": attrs},
            {"source": "t", "kind": "app", "op": "finished", "ts": ts + 900, "app_id": app_id, "user": user,
             "attrs": {"exit_code": 0}}]


def _file(app_id: str, user: str, op: str, uri: str, ts: int) -> dict[str, Any]:
    return {"source": "t", "kind": "file", "op": op, "ts": ts, "app_id": app_id, "user": user, "uri": uri}


def history() -> list[dict[str, Any]]:
    ev: list[dict[str, Any]] = []
    # project loan: ingest → raw (tagged), train → model; a loan run that writes a file of no naming rule
    ev += _app(LOAN_APPS[0], LOAN_USER, "loan", f"{MARK}_ingest", T0, f"python {MARK}_ingest.py", f"{MARK}c0ffee")
    ev += [_file(LOAN_APPS[0], LOAN_USER, "create", LOAN_RAW, T0 + 100), _file(LOAN_APPS[0], LOAN_USER, "read",
                                                                               PUBLIC, T0 + 50)]
    ev.append({"source": "t", "kind": "tag", "op": "set", "ts": T0 + 200, "uri": LOAN_RAW,
               "attrs": {"key": "pii", "value": "true"}})
    ev.append({"source": "t", "kind": "tag", "op": "set", "ts": T0 + 200, "uri": LOAN_RAW,
               "attrs": {"key": "owner", "value": f"{MARK}_owner"}})
    ev += _app(LOAN_APPS[1], LOAN_USER, "loan", f"{MARK}_train", T0 + 1000, f"python {MARK}_train.py --x",
               f"{MARK}beef")
    ev += [_file(LOAN_APPS[1], LOAN_USER, "read", LOAN_RAW, T0 + 1100),
           _file(LOAN_APPS[1], LOAN_USER, "read", LOAN_FG, T0 + 1150),
           _file(LOAN_APPS[1], LOAN_USER, "create", LOAN_MODEL, T0 + 1200),
           _file(LOAN_APPS[1], LOAN_USER, "create", SHARED_OUT, T0 + 1250)]
    # project other: a run that reads loan's raw data and public data (lineage that crosses projects)
    ev += _app(OTHER_APPS[0], "mallory", "other", "other_train", T0 + 2000, "python other.py", "abc123")
    ev += [_file(OTHER_APPS[0], "mallory", "read", LOAN_RAW, T0 + 2100),
           _file(OTHER_APPS[0], "mallory", "read", OTHER_RAW, T0 + 2150),
           _file(OTHER_APPS[0], "mallory", "read", PUBLIC, T0 + 2160),
           _file(OTHER_APPS[0], "mallory", "create", OTHER_MODEL, T0 + 2200)]
    # a loan run that reads other's model (crossing the other way), and a reader in other of loan's file
    ev += _app(LOAN_APPS[2], LOAN_USER, "loan", f"{MARK}_cross", T0 + 3000, f"python {MARK}_cross.py", f"{MARK}f00d")
    ev += [_file(LOAN_APPS[2], LOAN_USER, "read", OTHER_MODEL, T0 + 3100)]
    ev += _app(OTHER_APPS[1], "mallory", "other", "other_reader", T0 + 4000, "python reader.py", "abc124")
    ev += [_file(OTHER_APPS[1], "mallory", "read", SHARED_OUT, T0 + 4100),
           _file(OTHER_APPS[1], "mallory", "create", f"{OTHER}/Raw/derived_from_shared.csv", T0 + 4200)]
    return ev


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("access") / "home"
    access = AccessStore(home / "access.db")
    _, admin = access.create_token("root", admin=True)
    _, mallory = access.create_token("mallory", projects=("other",))
    access.close()
    settings = load_settings(home=home, server={"allowed_hosts": ["testserver"]})
    with TestClient(create_app(settings)) as client:
        r = client.post("/api/events", json=history(), headers={"Authorization": f"Bearer {admin}"})
        assert r.status_code == 202, r.text
        assert client.get("/api/apps", headers={"Authorization": f"Bearer {admin}"}).json()["total"] == 5
        yield {"c": client, "admin": admin, "mallory": mallory}


def _markers(text: str) -> set[str]:
    """Every distinct marker-bearing word in a text (URL-quoted or JSON-escaped ones too)."""
    plain = text.replace("%5F", "_").replace("%2F", "/")
    return set(re.findall(rf"[\w./:-]*{MARK}[\w.-]*", plain, flags=re.IGNORECASE))


# -- the values the generated requests are made of ------------------------------------------------------
HIDDEN = {"app": LOAN_APPS[1], "artifact": LOAN_RAW, "job": f"loan/{MARK}_train", "user": LOAN_USER,
          "text": MARK.lower(), "tag": f"owner={MARK}_owner"}
ABSENT = {"app": f"{MARK}_absent_1", "artifact": f"{LOAN}/Raw/{MARK}_absent.csv", "job": f"loan/{MARK}_absent",
          "user": f"{MARK.lower()}_absent", "text": f"{MARK.lower()}absent", "tag": f"owner={MARK}_absent"}
VISIBLE = {"app": OTHER_APPS[0], "artifact": OTHER_MODEL, "job": "other/other_train", "user": "mallory",
           "text": "other", "tag": "pii=true"}
PARAM_KIND = {"app_id": "app", "app": "app", "a": "app", "b": "app", "uri": "artifact", "dataset": "artifact",
              "artifact": "artifact", "artifact_id": "artifact", "job": "job", "name": "job", "user": "user",
              "q": "text", "tag": "tag", "project": "project"}
EXTRA = {"format": ["md", "html", "json"], "direction": ["up", "down", "both"]}


def _routes(client: TestClient) -> list[tuple[str, list[str], list[str]]]:
    """(path, path parameters, query parameters) of every GET operation the OpenAPI document lists."""
    out = []
    for path, ops in client.get("/openapi.json").json()["paths"].items():
        if "get" not in ops:
            continue
        params = ops["get"].get("parameters", [])
        out.append((path, [p["name"] for p in params if p["in"] == "path"],
                    [p["name"] for p in params if p["in"] == "query"]))
    return out


PAGES = [("/", [], ["q", "project"]), ("/ui/artifact", [], ["uri"]), ("/ui/graph", [], ["uri", "direction"]),
         ("/ui/app/{app_id}", ["app_id"], []), ("/ui/user/{name}", ["name"], []),
         ("/ui/reports/audit", [], ["uri"]), ("/ui/reports/gdpr", [], ["uri"]),
         ("/ui/artifact/used-by.csv", [], ["uri"]), ("/ui/artifact/made-from.csv", [], ["uri"]),
         ("/ui/reports/audit.md", [], ["uri"]), ("/ui/reports/audit.json", [], ["uri"]),
         ("/ui/reports/gdpr.md", [], ["uri"]), ("/ui/reports/gdpr.json", [], ["uri"]),
         # a PDF's text is compressed: for it, only hidden and absent answers are compared
         ("/ui/reports/audit.pdf", [], ["uri"])]


def _value(kind: str, which: dict[str, str]) -> str:
    if kind == "project":
        return "loan" if which is HIDDEN else "nope" if which is ABSENT else "other"
    return which[kind]


def _requests(path: str, path_params: list[str],
              query: list[str]) -> Iterator[tuple[str, dict[str, Any], str, str, str]]:
    """(url, query, which, group, the varied value) for each parameter set to a hidden, an absent and a
    visible value in turn, the others visible; with every value of an enumerated parameter (report
    formats, directions). The requests of one group differ only in the value of the varied parameter."""
    names = [n for n in path_params + query if n in PARAM_KIND]
    if path.startswith("/ui/user") or path == "/api/users/{name}":
        kinds = {n: "user" for n in names}
    else:
        kinds = {n: PARAM_KIND[n] for n in names}
    varied = names or [None]
    extras = [[(k, v) for v in EXTRA[k]] for k in query if k in EXTRA]
    for target in varied:
        for which, label in ((HIDDEN, "hidden"), (ABSENT, "absent"), (VISIBLE, "visible")):
            values = {n: _value(kinds[n], which if n == target else VISIBLE) for n in names}
            for combo in itertools.product(*extras):
                url = path
                for n in path_params:
                    url = url.replace("{" + n + "}", values.get(n, "x"))
                yield (url, {**{n: values[n] for n in names if n in query}, **dict(combo)}, label,
                       f"{target}:{combo}", values.get(target, "") if target else "")


def _mallory(api: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {api['mallory']}", "Cookie": f"prov_token={api['mallory']}"}


def _normalize(text: str, varied: str) -> str:
    """An answer with the value that was varied (the hidden or the absent one) and timestamps blanked."""
    for form in {varied, json.dumps(varied)[1:-1], urllib.parse.quote(varied, safe=""), urllib.parse.quote(varied),
                 urllib.parse.quote_plus(varied), html.escape(varied)}:
        text = text.replace(form, "@")
    return re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+Z", "@time", text)


def test_no_answer_names_what_mallory_may_not_see(api: dict[str, Any]) -> None:
    c = api["c"]
    routes = [r for r in _routes(c) if not r[0].startswith(("/docs", "/openapi"))] + PAGES
    assert len(routes) >= 25  # the document lists the API: this is not a test of nothing
    leaks, oracles, answered, sent_requests = [], [], 0, 0
    for path, path_params, query in routes:
        seen: dict[tuple[str, str], tuple[int, str]] = {}
        for url, params, label, group, varied in _requests(path, path_params, query):
            r = c.get(url, params=params, headers=_mallory(api), follow_redirects=False)
            sent_requests += 1
            assert r.status_code < 500, (url, params, r.text[:300])
            sent = {*_markers(url), *(m for v in params.values() for m in _markers(str(v)))}
            if label == "visible" and r.status_code == 200:
                answered += 1
            extra = {m for m in _markers(r.text) if not any(m.lower() in s.lower() or s.lower() in m.lower()
                                                            for s in sent)}
            if extra:
                leaks.append((url, params, sorted(extra)[:5]))
            if label in ("hidden", "absent") and varied:  # (with nothing varied, the same request twice)
                seen[(group, label)] = (r.status_code, _normalize(r.text, varied))
        for (group, label), (status, body) in seen.items():
            twin = seen.get((group, "absent"))
            if label == "hidden" and twin is not None and twin != (status, body):
                oracles.append((path, group, status, twin[0], body[:200], twin[1][:200]))
    assert leaks == [], f"answers that name project loan's things to mallory: {leaks[:10]}"
    assert oracles == [], f"a hidden thing answers unlike an absent one: {oracles[:5]}"
    assert answered >= 15  # mallory's own things were answered: the requests reached the handlers
    print(f"access suite: {len(routes)} routes, {sent_requests} requests")  # the README's figures (pytest -s)


def test_mallory_sees_her_own_project_and_redacted_crossings(api: dict[str, Any]) -> None:
    c, h = api["c"], _mallory(api)
    audit = c.get("/api/audit", params={"uri": OTHER_MODEL}, headers=h).json()
    assert audit["redacted"] >= 1 and audit["target"]["uri"].endswith("other_model")
    assert any(a.get("redacted") for a in audit["artifacts"])  # loan's raw file: there, not named
    assert not re.search(MARK, json.dumps(audit), re.IGNORECASE)
    gdpr = c.get("/api/gdpr", params={"uri": PUBLIC}, headers=h).json()
    assert gdpr["redacted"] >= 1 and any(m["uri"].endswith("other_model") for m in gdpr["models"])
    ids = [n["id"] for n in c.get("/api/lineage", params={"uri": OTHER_MODEL, "direction": "both"},
                                  headers=h).json()["nodes"]]
    opaque = [i for i in ids if i.startswith("redacted:")]
    assert opaque and all(re.fullmatch(r"redacted:\d+", i) for i in opaque)  # numbered here, derived from nothing
    users = [u["name"] for u in c.get("/api/users", headers=h).json()["users"]]
    assert users == ["mallory"]
    # the file a loan run wrote outside any naming rule is loan's: mallory's reader of it sees it redacted
    fp = c.get(f"/api/apps/{OTHER_APPS[1]}/footprint", headers=h).json()
    assert fp["redacted"] >= 1 and [f["uri"] for f in fp["files"] if f["redacted"]] == ["redacted"]


def test_the_admin_sees_everything(api: dict[str, Any]) -> None:
    c, h = api["c"], {"Authorization": f"Bearer {api['admin']}"}
    audit = c.get("/api/audit", params={"uri": OTHER_MODEL}, headers=h).json()
    assert audit["redacted"] == 0 and MARK in json.dumps(audit)
    assert c.get("/api/search", params={"q": MARK.lower() + "*"}, headers=h).json()["total"] >= 3


def test_mallory_cannot_send_events(api: dict[str, Any]) -> None:
    r = api["c"].post("/api/events", json=history()[:1], headers={"Authorization": f"Bearer {api['mallory']}"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"


def test_counts_and_times_are_of_what_one_may_see(tmp_path: Any) -> None:
    """bob ran one job in project other and three in loan; a public file was read by runs of both projects and
    of none. A member of other is told of one run of bob's and its times; search and the landing page count
    the readers she may see; the admin is told of all."""
    home = tmp_path / "home"
    access = AccessStore(home / "access.db")
    _, admin = access.create_token("root", admin=True)
    _, mallory = access.create_token("mallory", projects=("other",))
    access.close()
    shared = "/shared/public_table.csv"
    ev: list[dict[str, Any]] = []
    ev += _app("bob_other_1", "bob", "other", "other_job", T0, "python o.py", "a1")
    ev += [_file("bob_other_1", "bob", "read", shared, T0 + 100)]
    for i in range(3):
        ev += _app(f"bob_loan_{i}", "bob", "loan", f"{MARK}_job", T0 + 10_000 * (i + 1), "python l.py", "b2")
        ev += [_file(f"bob_loan_{i}", "bob", "read", shared, T0 + 10_000 * (i + 1) + 100)]
    ev += _app("nobody_1", "carl", None, "plain", T0 + 500, "python p.py", "c3")
    ev += [_file("nobody_1", "carl", "read", shared, T0 + 600)]
    with TestClient(create_app(load_settings(home=home, server={"allowed_hosts": ["testserver"]}))) as c:
        assert c.post("/api/events", json=ev, headers={"Authorization": f"Bearer {admin}"}).status_code == 202
        for token, runs, last, readers in ((mallory, 1, T0 + 900, 2), (admin, 4, T0 + 30_900, 5)):
            h = {"Authorization": f"Bearer {token}"}
            user = c.get("/api/users/bob", headers=h).json()
            assert (user["total_runs"], user["last_ts"]) == (runs, last)
            listed = {u["name"]: u for u in c.get("/api/users", headers=h).json()["users"]}
            assert listed["bob"]["last_ts"] == last
            (hit,) = c.get("/api/search", params={"q": "bob", "kind": "user"}, headers=h).json()["hits"]
            assert (hit["usage"], hit["last_ts"]) == (runs, last) and hit["description"] == f"user bob: {runs} run(s)"
            (art,) = c.get("/api/search", params={"q": "public_table*", "kind": "artifact"}, headers=h).json()["hits"]
            assert art["usage"] == readers
            used = c.get("/api/search/most-used-datasets", headers=h).json()["datasets"]
            assert [d["usage"] for d in used if d["uri"].endswith("public_table.csv")] == [readers]
            assert f"read by {readers} run(s)" in c.get("/", headers=h).text
