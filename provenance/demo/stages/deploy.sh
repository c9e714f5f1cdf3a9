#!/bin/sh
# Deploy: copy a model version into the serving directory. Usage: deploy.sh MODEL_DIR SERVING_DIR
set -eu
mkdir -p "$2"
cp "$1/model.pkl" "$2/model.pkl"
echo "deployed $1 → $2"
