#!/usr/bin/env bash
# The demo: a local 3-node cluster of real containerd daemons pulling through Peili.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
exec npx tsx demo/demo.ts "$@"
