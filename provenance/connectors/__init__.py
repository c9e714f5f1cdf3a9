"""Connectors: one module per source, each turning native change records into raw bus records.

- `launcher`: ``provenance run`` as the resource manager on one machine (app events).
- `audithook`: Python-level file capture in the launched job, with no root (file events).
- `delta`: the Delta Lake transaction-log tailer (table-commit events).
- `cdc`: Debezium change events of metadata databases, through declarative table mappings.
- `openlineage`: OpenLineage RunEvents.
- `hdfs` and `s3`: HDFS audit logs and S3/MinIO bucket notifications.
"""
