#!/usr/bin/env bash
# The whole test suite: unit tests and integration tests on the real test bed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
exec npx tsx scripts/run-tests.ts "$@"
