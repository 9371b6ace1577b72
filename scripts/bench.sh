#!/usr/bin/env bash
# npm run bench [-- <scenario>… --quick --runs N --out FILE --cpu-prof]: every benchmark scenario
# on the local test bed; writes BENCHMARKS.md. See bench/run.ts.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
# --expose-gc: the cost scenario measures heap per key after forced collections.
exec node --expose-gc --import tsx bench/run.ts "$@"
