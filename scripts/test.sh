#!/usr/bin/env bash
# Installs the package with its test and lint dependencies, checks types and style, runs the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# setfattr (Debian package attr) for the extended-attribute capture test
if ! command -v setfattr >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq attr) >/dev/null
fi
python3 -m pip install --quiet --disable-pip-version-check -e '.[test,dev]'
python3 -m ruff check provenance tests bench examples
python3 -m mypy
exec python3 -m pytest -q "$@"
