#!/usr/bin/env bash
# Installs the package (with what the demo pipeline uses: pandas, scikit-learn, deltalake), then runs
# the demo on the embedded default.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -e '.[demo]'
exec provenance demo "$@"
