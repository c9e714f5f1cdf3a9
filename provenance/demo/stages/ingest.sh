#!/bin/sh
# Ingest: every file that arrived in inbox/ goes to data/raw/ with its rows sorted, its original is
# archived (gzip) and removed from the inbox. Plain shell tools: captured by fanotify, whatever the language.
set -eu
mkdir -p data/raw archive
for f in inbox/*.csv; do
  b=$(basename "$f")
  { head -n 1 "$f"; tail -n +2 "$f" | sort -t, -k1,1; } > "data/raw/$b"
  gzip -c "$f" > "archive/$b.gz"
  rm "$f"
  echo "ingested $b"
done
