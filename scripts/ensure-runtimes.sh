#!/usr/bin/env bash
# Makes the test bed's containerd runtimes available, each at the version pinned in
# scripts/pins.env, in a cache folder outside the repository, and only when missing:
#   2.2  go install from the Go module proxy (Talos 1.12.9+ runs 2.2.x)
#   2.1  Debian unstable's package, fetched with apt's private options and extracted
#   1.7  Debian 13's package, likewise
#   1.6  Debian 12's own package (installed by ensure-deps.sh)
# Usage: ensure-runtimes.sh [2.2|2.1|1.7|1.6 …]   (default: $PEILI_CONTAINERD, else 2.2)
# Nothing is added to the machine's apt sources and nothing is installed system-wide.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/pins.env
cache=${PEILI_CACHE_DIR:-$HOME/.cache/peili}
wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=("${PEILI_CONTAINERD:-2.2}")

log() { echo "ensure-runtimes: $*" >&2; }

# Moves the three binaries from $2 into $1/bin atomically: a half-built folder is never used.
install_bins() {
  local dest=$1 from=$2 tmp
  tmp=$(mktemp -d "$cache/.tmp-XXXXXX")
  mkdir -p "$tmp/bin"
  for bin in containerd containerd-shim-runc-v2 ctr; do
    [ -x "$from/$bin" ] || { log "$from/$bin is missing"; exit 1; }
    cp "$from/$bin" "$tmp/bin/$bin"
  done
  rm -rf "$dest"
  mv "$tmp" "$dest"
}

go_runtime() {
  local version=$1 dest="$cache/containerd-$1"
  [ -x "$dest/bin/containerd" ] && return 0
  command -v go >/dev/null 2>&1 || { log "containerd $version needs Go (go install from the module proxy)"; exit 1; }
  log "building containerd $version with go install (about 2-4 min on 2 cores, once)"
  local start=$SECONDS gobin
  gobin=$(mktemp -d "$cache/.gobin-XXXXXX")
  # Tags leave out snapshotters whose C headers Debian 12 lacks; the bed uses overlayfs and native.
  GOBIN=$gobin GOFLAGS=-mod=mod go install -tags no_btrfs,no_devmapper,no_zfs \
    "github.com/containerd/containerd/v2/cmd/containerd@v$version" \
    "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@v$version" \
    "github.com/containerd/containerd/v2/cmd/ctr@v$version"
  install_bins "$dest" "$gobin"
  rm -rf "$gobin"
  log "containerd $version built in $((SECONDS - start)) s"
}

deb_runtime() {
  local deb_version=$1 suite=$2 dest="$cache/containerd-$1"
  [ -x "$dest/bin/containerd" ] && return 0
  log "fetching Debian's containerd $deb_version from $suite (apt with private lists; once)"
  local start=$SECONDS apt="$cache/apt-$suite"
  mkdir -p "$apt/lists/partial" "$apt/archives/partial"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main" \
    >"$apt/sources.list"
  local opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt" -o "Dir::Cache::archives=$apt/archives"
    -o APT::Sandbox::User=root)
  apt-get "${opts[@]}" update -qq
  local work
  work=$(mktemp -d "$cache/.deb-XXXXXX")
  (cd "$work" && apt-get "${opts[@]}" download "containerd=$deb_version" >/dev/null) || {
    log "containerd=$deb_version is no longer in Debian $suite: bump it in scripts/pins.env"
    rm -rf "$work"
    exit 1
  }
  dpkg-deb -x "$work"/containerd_*.deb "$work/root"
  install_bins "$dest" "$work/root/usr/bin"
  rm -rf "$work"
  log "containerd $deb_version ready in $((SECONDS - start)) s"
}

mkdir -p "$cache"
for runtime in "${wanted[@]}"; do
  case "$runtime" in
    2.2) go_runtime "$CONTAINERD_2_2_VERSION" ;;
    2.1) deb_runtime "$CONTAINERD_2_1_DEB" sid ;;
    1.7) deb_runtime "$CONTAINERD_1_7_DEB" trixie ;;
    1.6) command -v containerd >/dev/null || { log "containerd 1.6 comes from Debian 12: run scripts/ensure-deps.sh"; exit 1; } ;;
    *) log "PEILI_CONTAINERD: expected one of 2.2, 2.1, 1.7, 1.6, got \"$runtime\""; exit 2 ;;
  esac
done
