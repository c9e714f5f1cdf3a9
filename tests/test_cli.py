from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import APP, EXAMPLE, P


def run(home: Path, *args: str, env: dict[str, str] | None = None,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "provenance.cli", "--home", str(home), *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})}, input=stdin)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    h = tmp_path_factory.mktemp("cli")
    r = run(h, "ingest", str(EXAMPLE), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"appended": 94, "dead_lettered": 0, "events": 94, "processed": 94,
                                    "topic": "prov.raw.canonical"}
    return h


def test_footprint_json_names_uri_and_types(home: Path) -> None:
    r = run(home, "footprint", APP + "0006", "--json")
    data = json.loads(r.stdout)
    assert all("uri" in i and i["types"] for i in data["artifacts"] + data["files"])
    assert data["app"]["app_id"] == APP + "0006"


def test_every_query_answers_json(home: Path) -> None:
    for args in (["apps"], ["impact", "--artifact", f"file://{P}/loan_featurestore.db/loan_features_1@1"],
                 ["audit", f"{P}/Deployments/loan_scoring"], ["gdpr", f"{P}/Raw/applications_2026_02.csv"]):
        r = run(home, *args, "--json")
        assert r.returncode == 0, r.stderr
        data = json.loads(r.stdout)
        assert ("partial" in data and "totals" in data) or (args == ["apps"] and "total" in data)


def test_apps_filters(home: Path) -> None:
    data = json.loads(run(home, "apps", "--user", "bob", "--json").stdout)
    assert data["total"] == 6 and {u for a in data["apps"] for u in a["users"]} == {"bob"}
    data = json.loads(run(home, "apps", "--name", "loan/train", "--json").stdout)
    assert [a["app_id"] for a in data["apps"]] == [APP + "0012", APP + "0006"]
    assert json.loads(run(home, "apps", "--name", "train", "--json").stdout)["apps"] == data["apps"]
    assert json.loads(run(home, "apps", "--name", "other/train", "--json").stdout)["total"] == 0
    data = json.loads(run(home, "apps", "--state", "failed", "--json").stdout)
    assert data["total"] == 0
    data = json.loads(run(home, "apps", "--as-of", "2026-03-02T12:00:00Z", "--json").stdout)
    assert data["total"] == 2


def test_human_output_and_markdown_report(home: Path, tmp_path: Path) -> None:
    r = run(home, "gdpr", f"{P}/Raw/applications_2026_02.csv")
    assert r.returncode == 0 and "Models and deployments (4)" in r.stdout
    # replayed runs without processes: every item possible, apart from the certain ones, and said why
    assert "Copies of the data: none found" in r.stdout and "Derived artifacts to erase or rebuild (0)" in r.stdout
    assert "Possibly derived, to review (14)" in r.stdout and "possible (run)" in r.stdout
    assert "certain (" not in r.stdout and "possible: through a run" in r.stderr
    assert "superseded" in r.stdout and "serving now" in r.stdout
    report = tmp_path / "audit.md"
    r = run(home, "audit", f"{P}/Deployments/loan_scoring", "--format", "md", "-o", str(report))
    assert r.returncode == 0, r.stderr
    text = report.read_text()
    assert text.startswith("# Audit: loan_scoring") and "9d4b7f1" in text and "applications_2026_02.csv" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["impact"], "give exactly one of --app, --job or --artifact"),
        (["impact", "--app", "a", "--job", "b"], "give exactly one"),
        (["footprint"], "Missing argument 'APP'"),
        (["audit", "x", "--as-of", "last tuesday"], "is not an ISO-8601 time"),
        (["audit", "x", "--depth", "0"], "--depth"),
        (["ingest", "/no/such/file.jsonl"], "cannot read"),
        (["ingest", "x", "--format", "nope"], "unknown format 'nope'"),
        (["frobnicate"], "No such command"),
    ],
)
def test_misuse_exits_2_with_a_message(home: Path, args: list[str], message: str) -> None:
    r = run(home, *args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert message in r.stderr


def test_not_found_exits_1(home: Path) -> None:
    r = run(home, "footprint", "no-such-app")
    assert r.returncode == 1 and "no app 'no-such-app'" in r.stderr


def test_bad_records_are_reported_and_listed(tmp_path: Path) -> None:
    r = run(tmp_path, "ingest", "-", stdin='{"bad": 1}\n' + EXAMPLE.read_text().splitlines()[0] + "\n")
    assert r.returncode == 0 and "1 record(s) went to the dead-letter topic" in r.stderr
    letters = json.loads(run(tmp_path, "dead-letters", "--json").stdout)["dead_letters"]
    assert len(letters) == 1 and "source: Field required" in letters[0]["error"]


def test_bad_config_file_fails_at_start_naming_the_line(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("batch_size: 100\nstore:\n  type: embedded\n  colour: blue\n")
    r = run(tmp_path, "--config", str(cfg), "apps")
    assert r.returncode == 2 and "line 4" in r.stderr and "colour" in r.stderr
    cfg.write_text("batch_size: [1\n")
    r = run(tmp_path, "--config", str(cfg), "apps")
    assert r.returncode == 2 and "line 2" in r.stderr and "not valid YAML" in r.stderr
    cfg.write_text("store:\n  type: cassandra\n")
    r = run(tmp_path, "--config", str(cfg), "apps")
    assert r.returncode == 2 and "unknown store type 'cassandra' (known: embedded, neo4j)" in r.stderr


def test_unknown_bus_type_from_the_environment(tmp_path: Path) -> None:
    r = run(tmp_path, "apps", env={"PROVENANCE_BUS__TYPE": "carrier-pigeon"})
    assert r.returncode == 2 and "unknown bus type 'carrier-pigeon'" in r.stderr


def test_bad_rules_file_fails_at_start_naming_the_rule(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text('rules:\n  - name: broken\n    match: "/x/{name"\n    type: model\n')
    r = run(tmp_path, "apps", env={"PROVENANCE_RULES_FILE": str(rules)})
    assert r.returncode == 2 and "rule 'broken' (line 2)" in r.stderr


def test_replay_rebuilds_the_same_graph(home: Path) -> None:
    before = run(home, "gdpr", f"{P}/Raw/applications_2026_02.csv", "--json").stdout
    r = run(home, "replay")
    assert r.returncode == 0 and "replayed 94 record(s)" in r.stdout
    assert run(home, "gdpr", f"{P}/Raw/applications_2026_02.csv", "--json").stdout == before


def test_demo_replay_prints_the_audit_report(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "provenance.cli", "--home", str(tmp_path / "d"), "demo", "--replay"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Audit: loan_scoring" in r.stdout and "GDPR report" in r.stdout


def test_compare_two_runs_of_a_job(home: Path) -> None:
    r = run(home, "repro", f"{APP}0006", f"{APP}0012", "--json")
    assert r.returncode == 3, r.stderr  # they differ: the same exit status with --json as without
    cmp = json.loads(r.stdout)
    assert not cmp["reproducible"] and cmp["same"]["inputs"] is False
    assert [c["uri"] for c in cmp["inputs"]["changed"]] == ["file:///Projects/loan/loan_Training_Datasets/loan_td"]
    assert any("inputs differ" in w for w in cmp["warnings"])
    readable = run(home, "repro", f"{APP}0006", f"{APP}0012")
    assert readable.returncode == 3 and "not a reproduction" in readable.stdout
    same = run(home, "repro", f"{APP}0006", f"{APP}0006", "--json")
    assert same.returncode == 0 and json.loads(same.stdout)["same"]["inputs"] is True
    assert run(home, "repro", f"{APP}0006", "no-such-app").returncode == 1
    assert run(home, "repro").returncode == 2


# -- the command line as a person uses it ------------------------------------------------------------------
def test_piped_tables_follow_columns_and_never_cut_an_id(home: Path) -> None:
    narrow = run(home, "apps", env={"COLUMNS": "80"})
    assert narrow.returncode == 0
    ids = [f"{APP}{n:04d}" for n in range(1, 15)]
    assert all(i in narrow.stdout for i in ids)  # whole, copyable
    assert not any(line != line.rstrip() for line in narrow.stdout.splitlines())  # no trailing padding
    wide = run(home, "apps", env={"COLUMNS": "200"})
    assert max(map(len, wide.stdout.splitlines())) > max(map(len, narrow.stdout.splitlines()))


def test_status_is_readable(home: Path) -> None:
    r = run(home, "status")
    assert r.returncode == 0 and "prov.raw.canonical" in r.stdout and "{'" not in r.stdout
    data = json.loads(run(home, "status", "--json").stdout)
    assert data["topics"]["prov.raw.canonical"] >= 94 and data["pending"] == 0


def test_relative_paths_are_resolved_against_the_working_directory(tmp_path: Path) -> None:
    data = tmp_path / "work" / "data" / "raw" / "people.csv"
    data.parent.mkdir(parents=True)
    events = [{"source": "t", "kind": "file", "op": "create", "ts": 1_700_000_000_000, "app_id": "ingest",
               "uri": str(data)},
              {"source": "t", "kind": "file", "op": "read", "ts": 1_700_000_001_000, "app_id": "train",
               "uri": str(data)},
              {"source": "t", "kind": "file", "op": "create", "ts": 1_700_000_002_000, "app_id": "train",
               "uri": str(tmp_path / "work" / "models" / "m" / "1" / "model.pkl")}]
    home = tmp_path / "home"
    assert run(home, "ingest", "-", stdin="\n".join(json.dumps(e) for e in events)).returncode == 0
    r = subprocess.run([sys.executable, "-m", "provenance.cli", "--home", str(home), "gdpr", "data/raw/people.csv",
                        "--json"], cwd=tmp_path / "work", capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert [m["uri"] for m in json.loads(r.stdout)["models"]] == [(tmp_path / "work" / "models" / "m").as_uri()]


def test_one_artifact_export_and_repro_of_one_run(home: Path, tmp_path: Path) -> None:
    art = json.loads(run(home, "artifact", f"{P}/loan_featurestore.db/loan_features_1", "--json").stdout)
    assert [v["version"] for v in art["versions"]] == ["0", "1", "2"]
    assert all(v["created_by"]["app_id"] for v in art["versions"]) and art["versions"][1]["readers"]
    readable = run(home, "artifact", f"{P}/loan_featurestore.db/loan_features_1")
    assert readable.returncode == 0 and APP + "0004" in readable.stdout
    out = tmp_path / "lineage.graphml"
    r = run(home, "export", f"{P}/Deployments/loan_scoring", "--format", "graphml", "-o", str(out))
    assert r.returncode == 0 and out.read_text().startswith("<?xml") and "wrote" in r.stderr
    prov = json.loads(run(home, "export", f"{P}/Deployments/loan_scoring").stdout)
    assert prov["entity"] and prov["activity"]
    ol = [json.loads(ln) for ln in run(home, "export-openlineage", APP + "0006").stdout.splitlines()]
    assert [e["eventType"] for e in ol] == ["START", "COMPLETE"]
    # one run against what was captured since: its training dataset has a newer version
    r = run(home, "repro", APP + "0006", "--json")
    since = json.loads(r.stdout)
    assert r.returncode == 3 and since["query"] == "repro" and since["b"]["app_id"] == APP + "0012"
    assert [c["uri"] for c in since["inputs"]["changed"]] == [f"file://{P}/loan_Training_Datasets/loan_td"]


def test_not_found_suggests_close_names(home: Path) -> None:
    r = run(home, "audit", f"{P}/Deployments/loan_scorng")
    assert r.returncode == 1 and f"file://{P}/Deployments/loan_scoring" in r.stderr and "provenance search" in r.stderr
    r = run(home, "footprint", APP + "006")
    assert r.returncode == 1 and "did you mean" in r.stderr


def test_time_errors_say_it_once(home: Path) -> None:
    r = run(home, "audit", "x", "--as-of", "yesterday")
    assert r.returncode == 2 and r.stderr.count("ISO-8601") == 1


def test_clear_empties_a_home(tmp_path: Path) -> None:
    assert run(tmp_path, "ingest", str(EXAMPLE)).returncode == 0
    assert run(tmp_path, "token", "create", "root", "--admin").returncode == 0
    assert (tmp_path / "graph.db").exists()
    r = run(tmp_path, "clear", "--yes", "--keep-tokens")
    assert r.returncode == 0 and not (tmp_path / "graph.db").exists() and (tmp_path / "access.db").exists()
    assert json.loads(run(tmp_path, "apps", "--json").stdout)["total"] == 0
    assert run(tmp_path, "clear").returncode == 130  # asks first; no answer in a pipe: aborted


def test_a_long_ingest_shows_progress_when_piped(tmp_path: Path) -> None:
    lines = [json.dumps({"source": "t", "kind": "file", "op": "read", "ts": 1_700_000_000_000 + i,
                         "app_id": f"a{i % 50}", "uri": f"/data/f{i % 3000}.csv"}) for i in range(60_000)]
    big = tmp_path / "big.jsonl"
    big.write_text("\n".join(lines) + "\n")
    r = run(tmp_path / "home", "ingest", str(big), env={"PROVENANCE_BATCH_SIZE": "5000"})
    assert r.returncode == 0, r.stderr
    assert "processing events:" in r.stderr and "%" in r.stderr


def test_the_demo_keeps_its_state_in_provenance_home(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "provenance.cli", "demo", "--replay"], capture_output=True, text=True,
                       timeout=120, env={**os.environ, "PROVENANCE_HOME": str(tmp_path / "state")})
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "state" / "graph.db").exists()
    r = subprocess.run([sys.executable, "-m", "provenance.cli", "demo", "--replay", "--dir", str(tmp_path / "x")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--home" in r.stderr
