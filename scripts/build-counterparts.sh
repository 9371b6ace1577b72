#!/usr/bin/env bash
# Builds the real programs that the cluster test (npm run test:cluster) runs against, at the
# versions pinned in scripts/pins.env, from the Go module proxy, into a cache outside the
# repository: ${PEILI_CACHE_DIR:-$HOME/.cache/peili}/<name>-<version>/bin. What is built already is
# skipped, so a warm run takes seconds.
#
# Most of these programs cannot be `go install`ed: their go.mod files carry `replace` directives
# that point into their own repositories. Each is therefore built inside a scratch module that
# this script writes into the cache: it requires the upstream module at the pinned version,
# repeats the upstream replaces that point at other modules, and turns the ones that point into
# the upstream repository (Kubernetes' staging modules) into the matching published versions.
#
# Every `go get` names the pinned version: a bare `go get pkg` would upgrade to the newest.
#
# Usage: scripts/build-counterparts.sh [name...]   (names: pulumi etcd kubernetes kwok
#        flux-source-controller flux-helm-controller pulumi-kubernetes; default: all)
# Prints `name version seconds` for each build and appends it to $CACHE/build-times.log.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=pins.env
. scripts/pins.env

CACHE=${PEILI_CACHE_DIR:-$HOME/.cache/peili}
# The machine's own Go builds everything; a toolchain line in an upstream go.mod must not make
# the go command download another one.
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
GO_MINOR=$(go env GOVERSION | sed -E 's/^go([0-9]+\.[0-9]+).*/\1/')

log() { echo "build-counterparts: $*" >&2; }

# upstream_replaces MODULE@VERSION [STAGING_VERSION]: the replace directives of the upstream
# go.mod, one `old => new` a line, fit for a scratch module. A replace into the upstream tree
# (./staging/src/k8s.io/api) becomes the published module at STAGING_VERSION when one is given,
# and is dropped otherwise (the upstream require line then names the published version).
upstream_replaces() {
  local gomod staging=${2:-}
  gomod=$(go mod download -json "$1" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
  [ -n "$gomod" ] || { log "cannot download $1"; return 1; }
  awk '
    /^replace[[:space:]]*\(/ { block = 1; next }
    block && /^\)/ { block = 0; next }
    block { print; next }
    /^replace[[:space:]]/ { sub(/^replace[[:space:]]+/, ""); print }
  ' "$gomod" | sed 's://.*$::' | awk -v staging="$staging" '
    NF == 0 { next }
    {
      split($0, side, "=>"); old = side[1]; new = side[2]
      gsub(/^[ \t]+|[ \t]+$/, "", old); gsub(/^[ \t]+|[ \t]+$/, "", new)
      if (new ~ /^\./) {
        if (staging != "" && new ~ /staging\//) { split(old, o, " "); print o[1] " => " o[1] " " staging }
        next
      }
      print old " => " new
    }'
}

# scratch DIR MODULE VERSION [STAGING_VERSION]: writes DIR/src/go.mod requiring MODULE@VERSION.
scratch() {
  local dir=$1 module=$2 version=$3 staging=${4:-}
  rm -rf "$dir/src"
  mkdir -p "$dir/src" "$dir/bin"
  {
    echo "module peili.local/counterpart/$(basename "$dir")"
    echo
    echo "go $GO_MINOR"
    echo
    echo "require $module $version"
    upstream_replaces "$module@$version" "$staging" | sed 's/^/replace /'
  } >"$dir/src/go.mod"
}

# begin NAME VERSION: returns 1 (skip) when NAME-VERSION is built. Holds a lock on it until
# finish (or the script's exit), so that two runs at once (CI and a developer, or a split cold
# build) never build the same thing into the same folder.
begin() {
  DIR=$CACHE/$1-$2
  exec 9>"$CACHE/.$1-$2.lock"
  flock 9
  if [ -f "$DIR/.built" ]; then
    log "$1 $2: built already"
    exec 9>&-
    return 1
  fi
  log "$1 $2: building in $DIR"
  START=$(date +%s)
}

finish() {
  local secs=$(($(date +%s) - START))
  touch "$DIR/.built"
  exec 9>&-
  echo "$1 $2 ${secs}s"
  echo "$(date -u +%FT%TZ) $1 $2 ${secs}s" >>"$CACHE/build-times.log"
}

build_pulumi() {
  begin pulumi "$PULUMI_VERSION" || return 0
  scratch "$DIR" github.com/pulumi/pulumi/pkg/v3 "v$PULUMI_VERSION"
  (cd "$DIR/src" && go get -tool "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@v$PULUMI_VERSION" &&
    go build -trimpath -o "$DIR/bin/" \
      -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" \
      github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
  finish pulumi "$PULUMI_VERSION"
}

build_etcd() {
  begin etcd "$ETCD_VERSION" || return 0
  scratch "$DIR" go.etcd.io/etcd/server/v3 "v$ETCD_VERSION"
  (cd "$DIR/src" && go get -tool "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" &&
    go build -trimpath -o "$DIR/bin/etcd" go.etcd.io/etcd/server/v3)
  finish etcd "$ETCD_VERSION"
}

build_kubernetes() {
  begin kubernetes "$KUBERNETES_VERSION" || return 0
  local minor=${KUBERNETES_VERSION#*.}
  minor=${minor%%.*}
  scratch "$DIR" k8s.io/kubernetes "v$KUBERNETES_VERSION" "v0.${KUBERNETES_VERSION#*.}"
  local cmds=(k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
    k8s.io/kubernetes/cmd/kube-scheduler)
  # The version the binaries report (the apiserver's /version, which clients and kwok read).
  local v=k8s.io/component-base/version
  (cd "$DIR/src" && go get -tool "${cmds[@]/%/@v$KUBERNETES_VERSION}" &&
    go build -trimpath -o "$DIR/bin/" \
      -ldflags "-X $v.gitVersion=v$KUBERNETES_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean" \
      "${cmds[@]}")
  finish kubernetes "$KUBERNETES_VERSION"
}

build_kwok() {
  begin kwok "$KWOK_VERSION" || return 0
  mkdir -p "$DIR/bin"
  GOBIN=$DIR/bin go install -trimpath "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION"
  finish kwok "$KWOK_VERSION"
}

build_flux() { # NAME MODULE VERSION
  begin "$1" "$3" || return 0
  scratch "$DIR" "$2" "v$3"
  (cd "$DIR/src" && go get -tool "$2@v$3" && go build -trimpath -o "$DIR/bin/${1#flux-}" "$2")
  finish "$1" "$3"
}

build_pulumi_kubernetes() {
  begin pulumi-kubernetes "$PULUMI_KUBERNETES_VERSION" || return 0
  local module=github.com/pulumi/pulumi-kubernetes/provider/v4 cmd
  cmd=$module/cmd/pulumi-resource-kubernetes
  scratch "$DIR" "$module" "v$PULUMI_KUBERNETES_MODULE_VERSION"
  # The plugin embeds its schema with the version stamped in, a file that upstream's
  # `go generate` writes next to main.go. Build from a writable copy of the module so that the
  # same generator can run here.
  local src
  src=$(go mod download -json "$module@v$PULUMI_KUBERNETES_MODULE_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
  cp -r "$src" "$DIR/src/provider"
  chmod -R u+w "$DIR/src/provider"
  echo "replace $module => ./provider" >>"$DIR/src/go.mod"
  mkdir -p "$DIR/src/generate"
  cp "$DIR/src/provider/cmd/pulumi-resource-kubernetes/generate.go" "$DIR/src/generate/main.go"
  # (The generator's imports come from the versions the provider requires: no `go get` for them,
  # which would upgrade them.)
  (cd "$DIR/src" && go get -tool "$cmd@v$PULUMI_KUBERNETES_MODULE_VERSION" && go build -o "$DIR/generate-schema" ./generate/main.go)
  (cd "$DIR/src/provider/cmd/pulumi-resource-kubernetes" && VERSION=$PULUMI_KUBERNETES_VERSION "$DIR/generate-schema")
  (cd "$DIR/src" && go build -trimpath -o "$DIR/bin/" \
    -ldflags "-X $module/pkg/version.Version=$PULUMI_KUBERNETES_VERSION" "$cmd")
  finish pulumi-kubernetes "$PULUMI_KUBERNETES_VERSION"
}

mkdir -p "$CACHE"
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(pulumi etcd kubernetes kwok flux-source-controller flux-helm-controller pulumi-kubernetes)
total_start=$(date +%s)
for name in "${names[@]}"; do
  case $name in
    pulumi) build_pulumi ;;
    etcd) build_etcd ;;
    kubernetes) build_kubernetes ;;
    kwok) build_kwok ;;
    flux-source-controller) build_flux flux-source-controller github.com/fluxcd/source-controller "$FLUX_SOURCE_CONTROLLER_VERSION" ;;
    flux-helm-controller) build_flux flux-helm-controller github.com/fluxcd/helm-controller "$FLUX_HELM_CONTROLLER_VERSION" ;;
    pulumi-kubernetes) build_pulumi_kubernetes ;;
    *) log "unknown counterpart: $name"; exit 2 ;;
  esac
done
log "all done in $(($(date +%s) - total_start))s; cache: $CACHE"
