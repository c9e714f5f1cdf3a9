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
