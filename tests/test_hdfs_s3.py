"""HDFS audit logs and S3/MinIO notifications, in the formats Hadoop and AWS/MinIO document."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from provenance.config import load_settings
from provenance.connectors.hdfs import AuditLogTailer, line_events, parse_line, user_of
from provenance.connectors.s3 import notification_events
from provenance.errors import EventError
from provenance.stack import open_stack
from tests.conftest import Queries

ROOT = Path(__file__).resolve().parent.parent
T = "\t"


def audit(stamp: str, cmd: str, src: str, dst: str = "null", ugi: str = "alice (auth:SIMPLE)",
          ctx: str | None = "SPARK_DRIVER_application_1772442000000_0007_1", allowed: str = "true") -> str:
    fields = [f"allowed={allowed}", f"ugi={ugi}", "ip=/10.0.0.5", f"cmd={cmd}", f"src={src}", f"dst={dst}",
              "perm=alice:hadoop:rw-r--r--", "proto=rpc"]
    if ctx is not None:
        fields.append(f"callerContext={ctx}")
    return f"{stamp} INFO FSNamesystem.audit: {T.join(fields)}"


def test_audit_lines_become_file_events() -> None:
    [ev] = line_events(audit("2026-03-02 09:00:10,123", "open", "/data/raw/a.csv"), "hdfs://nn:8020")
    assert (ev.op, ev.uri, ev.app_id, ev.user, ev.ts) == (
        "read", "hdfs://nn:8020/data/raw/a.csv", "application_1772442000000_0007", "alice", 1_772_442_010_123)
    assert ev.attrs == {"ip": "10.0.0.5", "cmd": "open"}
    [ren] = line_events(audit("2026-03-02 09:00:11,000", "rename", "/tmp/_t/part-0", "/data/out/part-0"))
    assert ren.op == "rename" and (ren.uri, ren.dst) == ("hdfs:///tmp/_t/part-0", "hdfs:///data/out/part-0")
    # metadata reads, mkdirs and denied operations are not lineage
    assert line_events(audit("2026-03-02 09:00:12,000", "listStatus", "/data")) == []
    assert line_events(audit("2026-03-02 09:00:12,000", "mkdirs", "/data/x")) == []
    assert line_events(audit("2026-03-02 09:00:12,000", "open", "/data/raw/a.csv", allowed="false")) == []
    # no caller context: the change is the user's own (no app)
    [direct] = line_events(audit("2026-03-02 09:00:13,000", "create", "/data/up.csv", ctx=None))
    assert direct.app_id is None and direct.op == "create"
    assert user_of("hive/host.example.com@EXAMPLE.COM (auth:KERBEROS)") == "hive"
    assert user_of("svc (auth:PROXY) via bob (auth:SIMPLE)") == "bob"
    assert parse_line("2026-03-02 09:00:10,123 WARN SomethingElse: a stack trace") is None
    with pytest.raises(EventError, match="not an HDFS audit line"):
        line_events("java.lang.Exception: boom")


def test_tailing_follows_appends_and_rotation_and_builds_the_graph(tmp_path: Path) -> None:
    log = tmp_path / "hdfs-audit.log"
    log.write_text("\n".join([
        audit("2026-03-02 09:00:10,000", "open", "/data/raw/applications.csv"),
        "2026-03-02 09:00:10,500 INFO org.apache.hadoop.ipc.Server: not an audit line",
        audit("2026-03-02 09:00:20,000", "create", "/data/features/loans/part-0.parquet"),
    ]) + "\n" + audit("2026-03-02 09:00:21,000", "open", "/data/half")[:40])  # a line still being written
    with open_stack(load_settings(home=tmp_path / "home", search={"type": "none"})) as stack:
        tailer = AuditLogTailer(stack.bus, tmp_path / "home" / "state.json", "hdfs://nn:8020")
        r = tailer.tail(log)
        assert (r.lines, r.published, r.skipped) == (2 + 1, 2, 1)
        assert tailer.tail(log).published == 0  # nothing new
        # the half line completes, then the log rotates and a new one starts
        with log.open("a") as f:
            f.write(audit("2026-03-02 09:00:21,000", "open", "/data/half")[40:] + "\n")
        log.rename(tmp_path / "hdfs-audit.log.1")
        log.write_text(audit("2026-03-02 09:05:00,000", "open", "/data/features/loans/part-0.parquet",
                             ctx="SPARK_DRIVER_application_1772442000000_0008_1") + "\n")
        r = tailer.tail(log)
        assert r.published == 2  # the rest of the rotated log, then the new one
        stack.processor.catch_up()
        q = Queries(stack.store, stack.rules)
        fp = q.footprint("application_1772442000000_0007")
        assert {(f["uri"], tuple(f["types"])) for f in fp["files"]} == {
            ("hdfs://nn:8020/data/raw/applications.csv", ("INPUT",)),
            ("hdfs://nn:8020/data/features/loans/part-0.parquet", ("OUTPUT_ADDED",)),
            ("hdfs://nn:8020/data/half", ("INPUT",)),
        }
        impact = json.dumps(q.impact(app="application_1772442000000_0007"))
        assert "application_1772442000000_0008" in impact


def s3_record(name: str, key: str, when: str = "2026-03-02T09:00:00.000Z", **obj: object) -> dict[str, object]:
    return {"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "eu-north-1", "eventTime": when,
            "eventName": name, "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
            "requestParameters": {"sourceIPAddress": "10.0.0.9"}, "responseElements": {"x-amz-request-id": "r"},
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "prov",
                   "bucket": {"name": "lake", "ownerIdentity": {"principalId": "A"}, "arn": "arn:aws:s3:::lake"},
                   "object": {"key": key, "size": 10, "eTag": "e", "sequencer": "0055AED6DCD90281E5", **obj}}}


def test_s3_and_minio_notifications_become_file_events_and_tags() -> None:
    evs = notification_events({"Records": [
        s3_record("ObjectCreated:Put", "raw/loan+apps%3D2026.csv", versionId="v1",
                  userMetadata={"X-Amz-Meta-Prov-Pii": "true", "X-Amz-Meta-Prov-App-Id": "app-9",
                                "Content-Type": "text/csv"}),
        s3_record("ObjectRemoved:Delete", "tmp/x"),
        s3_record("s3:ObjectAccessed:Get", "raw/loan+apps%3D2026.csv"),  # MinIO names carry the s3: prefix
        s3_record("s3:Replication:OperationCompletedReplication", "raw/x"),
    ]})
    put, tag, rm, get = evs
    assert (put.op, put.uri, put.app_id, put.user) == ("create", "s3://lake/raw/loan apps=2026.csv", "app-9",
                                                        "AIDAEXAMPLE")
    assert put.attrs["version"] == "v1" and put.ts == 1_772_442_000_000
    assert (tag.kind, tag.attrs) == ("tag", {"key": "pii", "value": "true"})
    assert (rm.op, get.op, get.app_id) == ("delete", "read", None)
    # MinIO's Kafka target wraps the same records
    minio = {"EventName": "s3:ObjectCreated:Put", "Key": "lake/raw/b.csv",
             "Records": [s3_record("s3:ObjectCreated:Put", "raw/b.csv")]}
    assert [e.uri for e in notification_events(minio)] == ["s3://lake/raw/b.csv"]
    with pytest.raises(EventError, match="Records"):
        notification_events({"hello": 1})
    with pytest.raises(EventError, match=r"without s3\.bucket\.name"):
        notification_events({"Records": [{"eventName": "ObjectCreated:Put", "eventTime": "2026-03-02T09:00:00Z",
                                          "s3": {"object": {"key": "k"}}}]})


def test_s3_events_command_publishes_files_and_the_pii_tag_reaches_gdpr(tmp_path: Path) -> None:
    notes = tmp_path / "events.jsonl"
    notes.write_text("\n".join(json.dumps({"Records": [r]}) for r in [
        s3_record("ObjectCreated:Put", "raw/people.csv", "2026-03-02T09:00:00Z",
                  userMetadata={"X-Amz-Meta-Prov-Pii": "true"}),
        s3_record("ObjectAccessed:Get", "raw/people.csv", "2026-03-02T10:00:00Z",
                  userMetadata={"X-Amz-Meta-Prov-App-Id": "train-1"}),
        s3_record("ObjectCreated:Put", "models/churn/1/model.pkl", "2026-03-02T10:05:00Z",
                  userMetadata={"X-Amz-Meta-Prov-App-Id": "train-1"}),
    ]) + "\n")
    home = tmp_path / "home"
    r = subprocess.run([sys.executable, "-m", "provenance.cli", "--home", str(home), "s3-events", str(notes),
                        "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"notifications": 3, "processed": 3, "events": 4, "dead_lettered": 0}
    r = subprocess.run([sys.executable, "-m", "provenance.cli", "--home", str(home), "gdpr", "s3://lake/raw/people.csv",
                        "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    assert "s3://lake/models/churn" in r.stdout
    bad = tmp_path / "bad.json"
    bad.write_text("{nope\n")
    r = subprocess.run([sys.executable, "-m", "provenance.cli", "--home", str(home), "s3-events", str(bad)],
                       cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 2 and "line 1: not JSON" in r.stderr
