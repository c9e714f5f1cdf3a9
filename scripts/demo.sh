#!/usr/bin/env bash
# Installs the package (with what the demo pipeline uses: pandas, scikit-learn, deltalake), then runs
# the demo on the embedded default.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "installing provenance and the demo pipeline's dependencies (pandas, scikit-learn, deltalake)…" >&2
python3 -m pip install --disable-pip-version-check --progress-bar on -e '.[demo]' \
  | sed -u '/^Requirement already satisfied/d' >&2
exec provenance demo "$@"
