#!/usr/bin/env bash
# Installs the package, then runs the demo on the embedded default.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -e .
exec provenance demo "$@"
