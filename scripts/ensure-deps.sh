#!/usr/bin/env bash
# Installs what the tests, the demo and the benchmarks need, when it is missing: the npm packages,
# and (as root) the Debian packages of the test bed. Safe to run again; quick when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."

# A fresh clone gets exactly the locked versions; an existing install is only topped up when the
# manifest or the lock changed since (npm ci would delete node_modules under running processes).
stale=
if [ ! -d node_modules ]; then
  echo "ensure-deps: installing npm packages" >&2
  npm ci --no-audit --no-fund --loglevel=error
else
  # One lock file for the workspaces (mirror/: the daemon, infra/: the Pulumi program).
  for manifest in package.json package-lock.json mirror/package.json infra/package.json; do
    if [ "$manifest" -nt node_modules/.package-lock.json ]; then stale=$manifest; break; fi
  done
fi
if [ -n "${stale:-}" ]; then
  echo "ensure-deps: updating npm packages" >&2
  npm install --no-audit --no-fund --loglevel=error
fi

missing=()
for pair in containerd:containerd ctr:containerd docker-registry:docker-registry skopeo:skopeo umoci:umoci runc:runc ip:iproute2; do
  bin=${pair%%:*}; pkg=${pair#*:}
  command -v "$bin" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-deps: missing Debian packages ${missing[*]}; run as root or: apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "ensure-deps: installing Debian packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${missing[@]}" | sort -u) >/dev/null
fi

# The containerd the test bed runs (PEILI_CONTAINERD, default 2.2), and 2.1 for e2e/runtime-facts,
# built or fetched into the cache.
bash scripts/ensure-runtimes.sh "${PEILI_CONTAINERD:-2.2}" 2.1
