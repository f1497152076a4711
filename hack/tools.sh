#!/usr/bin/env bash
# Builds the project's tools from Go modules and caches them outside the clone, keyed by version.
# Nothing here downloads a prebuilt binary: this machine only reaches the Go module proxy and apt,
# so setup-envtest's downloads, release tarballs and kind images are all out of reach.
#
# Usage: hack/tools.sh <tool>...      builds what is missing, then prints one directory per tool
#   kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl
#   etcd minio mc controller-gen kustomize helm promtool kueue
#   envtest-assets   a directory holding kube-apiserver, etcd and kubectl, for KUBEBUILDER_ASSETS
#
# Progress goes to stderr; stdout carries only the resulting directories, so callers can capture it.
set -euo pipefail

KUBERNETES_VERSION="${KUBERNETES_VERSION:-v1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
# MinIO publishes no semver tags on the module proxy; this pseudo-version is the pinned build.
MINIO_VERSION="${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}"
# MinIO's admin client (mc), for creating the operator's dedicated MinIO user in tests and the
# demo. AGPL like the server: it runs as a separate process and is never linked.
MC_VERSION="${MC_VERSION:-v0.0.0-20250313080218-cf909e1063a9}"
CONTROLLER_TOOLS_VERSION="${CONTROLLER_TOOLS_VERSION:-v0.22.0}"
KUSTOMIZE_VERSION="${KUSTOMIZE_VERSION:-v5.8.1}"
HELM_VERSION="${HELM_VERSION:-v3.22.0}"
# promtool checks and unit-tests the chart's alert rules. Prometheus tags its Go module v0.3MM.P
# for release 3.MM.P (its module path has no /v3, so the v3.x tags are not module versions):
# v0.316.0 is Prometheus 3.16.0.
PROMTOOL_VERSION="${PROMTOOL_VERSION:-v0.316.0}"
# Kueue queues worker Jobs across tenants in the Kueue drill (K1). Its manager is built from the
# module like every tool, and its manifests come from the same module (config/).
KUEUE_VERSION="${KUEUE_VERSION:-v0.17.0}"

CACHE_ROOT="${DOWNLOAD_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/download-operator}"

# The staging modules that k8s.io/kubernetes replaces with ./staging paths; the module zip lacks
# those paths, so a wrapper module points each one at its published v0.x twin instead.
KUBE_STAGING_MODULES=(
  api apiextensions-apiserver apimachinery apiserver cli-runtime client-go
  cloud-provider cluster-bootstrap code-generator component-base component-helpers
  controller-manager cri-api cri-client cri-streaming csi-translation-lib
  dynamic-resource-allocation endpointslice externaljwt kms kube-aggregator
  kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics
  mount-utils pod-security-admission sample-apiserver streaming
)

log() { printf '[tools] %s\n' "$*" >&2; }

# Every build runs in a throwaway module under one temp dir, so nothing touches the project's
# go.mod, and a cache entry appears only once its binary is complete.
WORK_ROOT="$(mktemp -d "${TMPDIR:-/tmp}/download-operator-tools.XXXXXX")"
trap 'rm -rf "$WORK_ROOT"' EXIT

wrapper_dir() { mktemp -d "$WORK_ROOT/XXXXXX"; }

kube_go_mod() {
  local staging_version="v0${KUBERNETES_VERSION#v1}"
  printf 'module kbuild\n\ngo 1.26.0\n\ngodebug default=go1.26\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$KUBERNETES_VERSION"
  local m
  for m in "${KUBE_STAGING_MODULES[@]}"; do
    printf '\tk8s.io/%s => k8s.io/%s %s\n' "$m" "$m" "$staging_version"
  done
  printf ')\n'
}

kube_ldflags() {
  local v="$KUBERNETES_VERSION" major minor date flags="" pkg
  major="$(cut -d. -f1 <<<"${v#v}")"
  minor="$(cut -d. -f2 <<<"$v")"
  date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date"
  done
  printf '%s' "-s -w$flags"
}

build_kube() {
  local name="$1" out="$CACHE_ROOT/kubernetes-$KUBERNETES_VERSION"
  if [[ -x "$out/$name" ]]; then printf '%s\n' "$out"; return; fi
  log "building $name $KUBERNETES_VERSION from Go modules into $out (not cached yet)."
  [[ "$name" == kube-apiserver ]] && log "a cold kube-apiserver build takes 12-18 min and ~3 GB RAM."
  local work start=$SECONDS
  work="$(wrapper_dir)"
  kube_go_mod >"$work/go.mod"
  (cd "$work" && go get "k8s.io/kubernetes/cmd/$name@$KUBERNETES_VERSION" >&2 \
    && go build -ldflags "$(kube_ldflags)" -o "$work/$name" "k8s.io/kubernetes/cmd/$name" >&2)
  mkdir -p "$out"
  mv "$work/$name" "$out/$name"
  log "built $name in $((SECONDS - start)) s."
  printf '%s\n' "$out"
}

build_etcd() {
  local out="$CACHE_ROOT/etcd-$ETCD_VERSION"
  if [[ -x "$out/etcd" ]]; then printf '%s\n' "$out"; return; fi
  log "building etcd $ETCD_VERSION from Go modules into $out (not cached yet, ~1 min)."
  local work start=$SECONDS
  work="$(wrapper_dir)"
  printf 'module ebuild\n\ngo 1.26.0\n' >"$work/go.mod"
  (cd "$work" && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2 \
    && go build -ldflags "-s -w" -o "$work/etcd" go.etcd.io/etcd/server/v3 >&2)
  mkdir -p "$out"
  mv "$work/etcd" "$out/etcd"
  log "built etcd in $((SECONDS - start)) s."
  printf '%s\n' "$out"
}

# go_install_tool NAME MODULE_PATH VERSION BINARY [LDFLAGS] : for modules whose go.mod has no
# replace directives, a plain go install works; GOBIN goes to a staging dir so a failed build never
# leaves a half-populated cache entry behind.
go_install_tool() {
  local name="$1" pkg="$2" version="$3" binary="$4" ldflags="${5:-}" out="$CACHE_ROOT/$1-$3"
  if [[ -x "$out/$binary" ]]; then printf '%s\n' "$out"; return; fi
  log "building $name $version with go install into $out (not cached yet)."
  [[ "$name" == minio ]] && log "the MinIO server takes 6-10 min; it is a test service only and is never linked."
  local work start=$SECONDS
  work="$(wrapper_dir)"
  GOBIN="$work" go install ${ldflags:+-ldflags "$ldflags"} "$pkg@$version" >&2
  mkdir -p "$out"
  mv "$work/$binary" "$out/$binary"
  log "built $name in $((SECONDS - start)) s."
  printf '%s\n' "$out"
}

# promtool_ldflags stamps the Prometheus release (3.MM.P from the module's v0.3MM.P) into
# `promtool --version`, which otherwise prints an empty version.
promtool_ldflags() {
  local rest="${PROMTOOL_VERSION#v0.}" mm
  mm="${rest%%.*}"
  printf '%s' "-s -w -X github.com/prometheus/common/version.Version=$((mm / 100)).$((mm % 100)).${rest#*.}"
}

# build_kueue builds Kueue's manager, static for a scratch image, and keeps the module's config/
# beside it: the manifests match the binary only at the same version.
build_kueue() {
  local out
  out="$(CGO_ENABLED=0 go_install_tool kueue sigs.k8s.io/kueue/cmd/kueue "$KUEUE_VERSION" kueue \
    "-s -w -X sigs.k8s.io/kueue/pkg/version.GitVersion=$KUEUE_VERSION")"
  if [[ ! -d "$out/config" ]]; then
    local dir
    dir="$(cd "$(wrapper_dir)" && go mod download -json "sigs.k8s.io/kueue@$KUEUE_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
    [[ -d "$dir/config" ]] || { log "the kueue module at $dir has no config/"; exit 1; }
    cp -r "$dir/config" "$out/config.tmp" && chmod -R u+w "$out/config.tmp" && mv "$out/config.tmp" "$out/config"
  fi
  printf '%s\n' "$out"
}

envtest_assets() {
  local out="$CACHE_ROOT/envtest-$KUBERNETES_VERSION-etcd-$ETCD_VERSION" kube etcd
  kube="$(build_kube kube-apiserver)"
  build_kube kubectl >/dev/null
  etcd="$(build_etcd)"
  mkdir -p "$out"
  ln -sfn "$kube/kube-apiserver" "$out/kube-apiserver"
  ln -sfn "$kube/kubectl" "$out/kubectl"
  ln -sfn "$etcd/etcd" "$out/etcd"
  printf '%s\n' "$out"
}

main() {
  [[ $# -gt 0 ]] || { sed -n '2,12p' "$0" >&2; exit 2; }
  local tool
  for tool in "$@"; do
    case "$tool" in
      kube-apiserver|kube-controller-manager|kube-scheduler|kubelet|kube-proxy|kubectl) build_kube "$tool" ;;
      etcd) build_etcd ;;
      minio) go_install_tool minio github.com/minio/minio "$MINIO_VERSION" minio ;;
      mc) go_install_tool mc github.com/minio/mc "$MC_VERSION" mc ;;
      controller-gen) go_install_tool controller-gen sigs.k8s.io/controller-tools/cmd/controller-gen "$CONTROLLER_TOOLS_VERSION" controller-gen ;;
      kustomize) go_install_tool kustomize sigs.k8s.io/kustomize/kustomize/v5 "$KUSTOMIZE_VERSION" kustomize ;;
      helm) go_install_tool helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" helm ;;
      promtool) go_install_tool promtool github.com/prometheus/prometheus/cmd/promtool "$PROMTOOL_VERSION" promtool "$(promtool_ldflags)" ;;
      kueue) build_kueue ;;
      envtest-assets) envtest_assets ;;
      *) log "unknown tool: $tool"; exit 2 ;;
    esac
  done
}

main "$@"
