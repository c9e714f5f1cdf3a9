"""S3 / MinIO bucket notifications → file events (raw format ``s3``).

The record value is an event notification as S3 and MinIO send it: ``{"Records": [...]}`` (MinIO's
Kafka, webhook and queue targets add ``EventName`` and ``Key`` around the same ``Records``). Point
MinIO's Kafka target (or an SQS/EventBridge bridge) at the topic ``prov.raw.s3`` and the processor
reads the notifications directly; ``provenance s3-events FILE…`` publishes saved notifications
(JSON documents or JSON lines) from files.

Each record (event structure version 2.x) becomes one event on ``s3://<bucket>/<key>`` (the key is
URL-decoded, as the notification encodes it): ``ObjectCreated:*`` writes (``Copy``: the copy),
``ObjectRemoved:*`` deletes, ``ObjectAccessed:*`` (MinIO) reads. The object's user metadata with the
prefix ``x-amz-meta-prov-`` becomes tags (``x-amz-meta-prov-pii: true`` → tag ``pii``), like
``user.prov.*`` xattrs on files, and ``x-amz-meta-prov-app-id`` names the app that wrote the object;
without it the change is the principal's own (grouped per user). Other event types (replication,
lifecycle transitions, tagging) are not lineage and make nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_plus

import orjson

from provenance.bus.port import Bus, Record, raw_topic
from provenance.connectors.source import PollingSource
from provenance.errors import EventError
from provenance.events import Event
from provenance.events.model import Kind, event_id_for, to_ms

FORMAT = "s3"
META_PREFIX = "x-amz-meta-prov-"
_OPS = {"ObjectCreated": "write", "ObjectRemoved": "delete", "ObjectAccessed": "read"}


def _records(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, dict) and isinstance(data.get("Records"), list):
        return [r for r in data["Records"] if isinstance(r, dict)]
    if isinstance(data, dict) and "eventName" in data:
        return [data]  # a single record
    raise EventError('an S3 notification must hold "Records" (a list of event records)')


def record_events(rec: dict[str, Any]) -> list[Event]:
    name = str(rec.get("eventName", ""))
    family, _, detail = name.removeprefix("s3:").partition(":")
    op = _OPS.get(family)
    if op is None:
        return []
    s3 = rec.get("s3")
    if not isinstance(s3, dict):
        raise EventError(f"S3 record {name!r} without its s3 block")
    try:
        bucket = str(s3["bucket"]["name"])
        key = unquote_plus(str(s3["object"]["key"]))
    except (KeyError, TypeError):
        raise EventError(f"S3 record {name!r} without s3.bucket.name and s3.object.key") from None
    if not bucket or not key:
        raise EventError(f"S3 record {name!r} with an empty bucket or key")
    obj = s3["object"]
    try:
        ts = to_ms(str(rec.get("eventTime", "")))
    except ValueError as exc:
        raise EventError(f"S3 record {name!r}: eventTime: {exc}") from None
    ident = rec.get("userIdentity") or {}
    user = str(ident.get("principalId") or "") or None
    if user and ":" in user:  # AWS:AIDAXXXX or AWS:role/session → the part after the type
        user = user.split(":", 1)[1]
    meta = {str(k).lower(): v for k, v in (obj.get("userMetadata") or {}).items()}
    app = meta.pop(META_PREFIX + "app-id", None)
    uri = f"s3://{bucket}/{key}"
    attrs: dict[str, Any] = {"event": name}
    for k in ("size", "eTag", "versionId", "sequencer"):
        if obj.get(k) is not None:
            attrs[k.lower()] = obj[k]
    if obj.get("versionId"):
        attrs["version"] = str(obj["versionId"])
    native = f"{bucket}/{key}:{name}:{obj.get('sequencer') or ''}:{obj.get('versionId') or ''}:{ts}"
    events = [Event(event_id=event_id_for("s3", native), source="s3", kind=Kind.FILE,
                    op="create" if op == "write" and detail in ("Put", "Post", "Copy", "CompleteMultipartUpload")
                    else op, ts=ts, app_id=str(app) if app else None, user=user, uri=uri, attrs=attrs)]
    if op == "write":
        for k, v in sorted(meta.items()):
            if k.startswith(META_PREFIX) and len(k) > len(META_PREFIX):
                tag = k[len(META_PREFIX):]
                events.append(Event(event_id=event_id_for("s3", f"{native}:tag:{tag}"), source="s3", kind=Kind.TAG,
                                    op="set", ts=ts, uri=uri, attrs={"key": tag, "value": str(v)}))
    return events


def notification_events(data: Any) -> list[Event]:
    return [ev for rec in _records(data) for ev in record_events(rec)]


def normalize(value: bytes) -> list[Event]:
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise EventError(f"S3 notification is not JSON: {exc}") from None
    return notification_events(data)


def documents(text: str) -> Iterator[Any]:
    """JSON documents in a file: one JSON value, or JSON lines."""
    stripped = text.strip()
    if not stripped:
        return
    try:
        yield orjson.loads(stripped)
        return
    except orjson.JSONDecodeError:
        pass
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                yield orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise EventError(f"line {n}: not JSON: {exc}") from None


class S3NotificationFiles(PollingSource):
    """Saved S3 / MinIO bucket notifications (files of JSON documents or JSON lines) as a source:
    published once, each document as an ``s3`` record keyed by its bucket."""

    def __init__(self, bus: Bus, texts: list[tuple[str, str]]) -> None:
        self.bus, self.texts = bus, texts  # (where it came from, its text)
        self.name = f"s3 notifications: {', '.join(w for w, _ in texts)}"
        self.published = 0

    def poll(self) -> int:
        records: list[Record] = []
        for where, text in self.texts:
            try:
                docs = list(documents(text))
            except EventError as exc:
                raise EventError(f"{where}: {exc}") from None
            for doc in docs:
                first = (doc.get("Records") or [{}])[0] if isinstance(doc, dict) else {}
                key = ((first.get("s3") or {}).get("bucket") or {}).get("name") if isinstance(first, dict) else None
                records.append(Record(value=orjson.dumps(doc), key=str(key) if key else None))
        self.texts = []
        if records:
            self.bus.produce(raw_topic(FORMAT), records)
        self.published += len(records)
        return len(records)

    def state(self) -> dict[str, int]:
        return {"published": self.published}
