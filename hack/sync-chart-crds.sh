#!/usr/bin/env bash
# Copies the generated CRDs into the Helm chart; the chart's CRDs are never edited by hand.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST="$ROOT/charts/portcullis/crds"
mkdir -p "$DEST"
rm -f "$DEST"/*.yaml
cp "$ROOT"/config/crd/bases/*.yaml "$DEST"/
