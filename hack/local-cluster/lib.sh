# shellcheck shell=bash disable=SC2034  # the settings here are used by the scripts that source it
# Shared settings and helpers for hack/local-cluster/{up,down,load-images,verify}.
# Sourced, never run. Everything the cluster writes lives under $STATE, except the few things the
# kernel or a hard-coded path forces elsewhere; `up` records those before it starts (host_state_*)
# and `down` removes or restores exactly them.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE="${LOCAL_CLUSTER_DIR:-$REPO_ROOT/.local/cluster}"
# Absolute, because it goes into config files and into the shim socket hash (see shim_socket).
STATE="$(realpath -m "$STATE")"

NODE_NAME="${LOCAL_CLUSTER_NODE:-local-node}"
SERVICE_CIDR="10.0.0.0/24"
SERVICE_IP="10.0.0.1"          # first address of SERVICE_CIDR: the `kubernetes` Service
# Pod subnet candidates, tried in order; the first that no route on the host overlaps is used.
POD_CIDR_CANDIDATES=(10.88.0.0/24 10.89.0.0/24 10.188.0.0/24 172.30.88.0/24 192.168.188.0/24)
CNI_NETWORK="download-operator-local"
BRIDGE="dlopbr0"                # max 15 characters; unusual so that it never names a host device
ETCD_CLIENT_PORT=12379          # not 2379/2380: a developer may run another etcd (or envtest's)
ETCD_PEER_PORT=12380
APISERVER_PORT=6443
PAUSE_IMAGE="registry.k8s.io/pause:3.10"

PKI="$STATE/pki"
LOGS="$STATE/logs"
PIDS="$STATE/pids"
HOST_STATE="$STATE/host-state"
CONTAINERD_SOCK="$STATE/containerd.sock"
KUBECONFIG_ADMIN="$STATE/kubeconfig"
CLUSTER_ENV="$STATE/cluster.env"

# The order in which `up` starts the processes; `down` stops them in reverse.
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy)

# Sysctls that the kubelet (setupKernelTunables), the bridge plugin (ip_forward) or kube-proxy may
# change. `down` puts back every one whose value differs from what `up` found.
SYSCTLS=(
  vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes
  net.ipv4.ip_forward net.ipv6.conf.all.forwarding net.ipv4.conf.all.route_localnet
  net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables
)
IPTABLES_TABLES=(nat filter mangle)

# Paths outside $STATE that something writes to no matter the configuration; `down` removes them
# again if `up` found them absent (and they are empty once our entries are gone).
OUTSIDE_DIRS=(/run/containerd/s /run/containerd /var/lib/cni/results /var/lib/cni /var/log/containers /var/log/pods /var/run/netns)

log() { printf '[local-cluster] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# now prints seconds since the epoch with milliseconds, for the timing table.
now() { date +%s.%3N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ---------------------------------------------------------------------------------------------
# Processes: started in their own session, so that they outlive the shell that ran `up` (and are
# not hit by a Ctrl-C or a process-group kill aimed at it); stopped only by their recorded PID.

pid_file() { printf '%s/%s.pid' "$PIDS" "$1"; }

# pid_of NAME prints the recorded PID if that process is still alive AND still the binary we
# started (its /proc/PID/exe ends in NAME), so that a recycled PID is never signalled.
pid_of() {
  local f pid exe
  f="$(pid_file "$1")"
  [[ -s "$f" ]] || return 1
  pid="$(<"$f")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  exe="$(readlink "/proc/$pid/exe" 2>/dev/null)" || return 1
  [[ "${exe%" (deleted)"}" == */"$1" ]] || return 1
  printf '%s\n' "$pid"
}

is_running() { pid_of "$1" >/dev/null; }

# start NAME BINARY ARGS... : background, own session, stdin closed, output to logs/NAME.log.
start() {
  local name="$1"; shift
  mkdir -p "$LOGS" "$PIDS"
  # setsid does not fork here (a background job is not a group leader), so $! is the daemon.
  setsid "$@" </dev/null >>"$LOGS/$name.log" 2>&1 &
  printf '%s\n' "$!" >"$(pid_file "$name")"
  log "started $name (pid $!), log: ${LOGS#"$REPO_ROOT"/}/$name.log"
}

# alive PID: the process exists and is not a zombie. Our daemons are reparented to PID 1, which
# here reaps only every few seconds; a zombie still answers kill -0 but is already gone.
alive() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [[ -n "$stat" && "${stat%% *}" != Z ]]
}

# stop_pids GRACE PID... : SIGTERM to all at once, then SIGKILL to those still alive after GRACE
# seconds. Signalling together lets independent components shut down in parallel.
stop_pids() {
  local grace="$1" i pid
  local -a left
  shift
  [[ $# -gt 0 ]] || return 0
  kill -TERM "$@" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do
    left=()
    for pid in "$@"; do alive "$pid" && left+=("$pid"); done
    [[ ${#left[@]} -gt 0 ]] || return 0
    sleep 0.1
  done
  log "pid(s) ${left[*]} ignored SIGTERM for ${grace}s: SIGKILL"
  kill -KILL "${left[@]}" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    left=()
    for pid in "$@"; do alive "$pid" && left+=("$pid"); done
    [[ ${#left[@]} -gt 0 ]] || return 0
    sleep 0.1
  done
}

# stop_components GRACE NAME... : stops the recorded processes NAME... together.
stop_components() {
  local grace="$1" name pid pids=() names=()
  shift
  for name in "$@"; do
    if pid="$(pid_of "$name")"; then pids+=("$pid"); names+=("$name($pid)"); fi
  done
  if [[ ${#pids[@]} -gt 0 ]]; then
    log "stopping ${names[*]}"
    stop_pids "$grace" "${pids[@]}"
  fi
  for name in "$@"; do rm -f "$(pid_file "$name")"; done
}

# wait_for DESCRIPTION TIMEOUT_SECONDS COMMAND... : polls every 0.25 s.
wait_for() {
  local what="$1" timeout="$2" start
  shift 2
  start="$(now)"
  until "$@" >/dev/null 2>&1; do
    if awk -v s="$start" -v t="$timeout" -v n="$(now)" 'BEGIN { exit !(n - s > t) }'; then
      die "timed out after ${timeout}s waiting for $what (logs in $LOGS)"
    fi
    sleep 0.25
  done
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# ---------------------------------------------------------------------------------------------
# Binaries and host facts.

# kube_bin NAME prints the path of a Kubernetes/etcd binary, built and cached by hack/tools.sh.
kube_bin() {
  local dir
  dir="$("$REPO_ROOT/hack/tools.sh" "$1")" || die "hack/tools.sh $1 failed"
  printf '%s/%s\n' "$dir" "$1"
}

# kubectl_admin runs kubectl as cluster admin. KUBECTL is resolved once: the wait loops call this
# several times a second, and hack/tools.sh is not free.
KUBECTL=""
kubectl_admin() {
  [[ -n "$KUBECTL" ]] || KUBECTL="$(kube_bin kubectl)"
  "$KUBECTL" --kubeconfig "$KUBECONFIG_ADMIN" "$@"
}

ctr_k8s() { ctr -a "$CONTAINERD_SOCK" -n k8s.io "$@"; }

# host_ip prints the IPv4 address of the interface that carries the default route: that is the
# address the apiserver advertises (it refuses loopback) and the kubelet registers as InternalIP.
host_ip() {
  if [[ -n "${LOCAL_CLUSTER_HOST_IP:-}" ]]; then printf '%s\n' "$LOCAL_CLUSTER_HOST_IP"; return; fi
  local dev
  dev="$(ip -4 route show default | awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }')"
  [[ -n "$dev" ]] || die "no IPv4 default route; set LOCAL_CLUSTER_HOST_IP"
  ip -4 -o addr show dev "$dev" scope global | awk '{ split($4, a, "/"); print a[1]; exit }'
}

# ---------------------------------------------------------------------------------------------
# Things outside $STATE.

# shim_socket ID prints the socket that containerd 1.6's runc shim for task ID listens on. The
# path is hard-coded to /run/containerd/s/<sha256(address/namespace/id)>, whatever the config says,
# so `down` recomputes it for each task of this containerd instead of guessing.
shim_socket() {
  printf '/run/containerd/s/%s\n' "$(printf '%s' "$CONTAINERD_SOCK/k8s.io/$1" | sha256sum | cut -d' ' -f1)"
}

# our_shims prints the PIDs of containerd-shim processes that talk to this state dir's containerd
# (their command line carries "-address <state>/containerd.sock").
our_shims() {
  local re
  # shellcheck disable=SC2001  # a bracket expression is clearer than nested ${//} here
  re="$(sed 's/[][\.*^$+?(){}|]/\\&/g' <<<"$CONTAINERD_SOCK")"
  pgrep -f -- "containerd-shim[^ ]* .*-address $re( |\$)" || true
}

# mounts_under DIR prints every mount point at or below DIR, deepest first (safe unmount order).
mounts_under() {
  findmnt -rn -o TARGET | awk -v d="$1" '$0 == d || index($0, d "/") == 1' | awk '{ print length, $0 }' | sort -rn | cut -d' ' -f2-
}

# kube_chains FAMILY TABLE prints the KUBE-* and CNI-* chains that exist now.
kube_chains() {
  local save="iptables-save"
  [[ "$1" == ipv6 ]] && save="ip6tables-save"
  command -v "$save" >/dev/null || return 0
  "$save" -t "$2" 2>/dev/null | sed -n 's/^:\(\(KUBE\|CNI\)-[^ ]*\) .*/\1/p' || true
}

# sandbox_ids prints the IDs of every Pod sandbox this containerd knows, running or not.
sandbox_ids() {
  local d
  for d in "$STATE"/containerd/state/io.containerd.grpc.v1.cri/sandboxes/*; do
    [[ -d "$d" ]] && printf '%s\n' "${d##*/}"
  done
  return 0
}

kubepods_cgroups() {
  find /sys/fs/cgroup -mindepth 2 -maxdepth 2 -type d -name 'kubepods*' 2>/dev/null || true
}

# leftovers prints anything of ours still on the host; empty output means `down` left it clean.
leftovers() {
  local name pid m fam table c id
  for name in "${COMPONENTS[@]}"; do
    pid="$(pid_of "$name")" && echo "process: $name (pid $pid)"
  done
  for pid in $(our_shims); do echo "process: containerd-shim (pid $pid)"; done
  for m in $(mounts_under "$STATE"); do echo "mount: $m"; done
  ip link show "$BRIDGE" >/dev/null 2>&1 && ! host_state_flag bridge_existed && echo "device: $BRIDGE"
  for fam in ipv4 ipv6; do
    for table in "${IPTABLES_TABLES[@]}"; do
      for c in $(kube_chains "$fam" "$table"); do
        host_state_has_chain "$fam" "$table" "$c" || echo "iptables: $fam $table $c"
      done
    done
  done
  if ! host_state_flag kubepods_existed; then
    for c in $(kubepods_cgroups); do echo "cgroup: $c"; done
  fi
  compgen -G "/var/lib/cni/results/$CNI_NETWORK-*" >/dev/null && echo "file: /var/lib/cni/results/$CNI_NETWORK-*"
  for id in $(sandbox_ids); do
    [[ -e "/var/lib/cni/results/cni-loopback-$id-lo" ]] && echo "file: /var/lib/cni/results/cni-loopback-$id-lo"
  done
  for id in "$STATE"/containerd/state/io.containerd.runtime.v2.task/k8s.io/*; do
    [[ -e "$id" ]] || continue
    id="${id##*/}"
    [[ -e "$(shim_socket "$id")" ]] && echo "socket: $(shim_socket "$id")"
  done
  for m in /var/log/containers/*; do
    [[ -L "$m" && "$(readlink "$m")" == "$STATE"/* ]] && echo "symlink: $m"
  done
  return 0
}

# ---------------------------------------------------------------------------------------------
# The host-state record: written once by `up` before it changes anything, kept across repeated
# `up`s, and consumed (then deleted) by `down`. Without it `down` touches nothing outside $STATE
# that it cannot prove is its own.

host_state_record() {
  [[ -d "$HOST_STATE" ]] && return 0
  local tmp="$HOST_STATE.tmp" s fam table d
  rm -rf "$tmp"
  mkdir -p "$tmp/sysctl" "$tmp/chains" "$tmp/dirs"
  for s in "${SYSCTLS[@]}"; do
    sysctl -n "$s" >"$tmp/sysctl/$s" 2>/dev/null || rm -f "$tmp/sysctl/$s"
  done
  for fam in ipv4 ipv6; do
    for table in "${IPTABLES_TABLES[@]}"; do
      kube_chains "$fam" "$table" >"$tmp/chains/$fam-$table"
    done
  done
  if command -v nft >/dev/null; then
    nft list tables 2>/dev/null | sed 's/^table //' >"$tmp/nft-tables" || true
  fi
  ip link show "$BRIDGE" >/dev/null 2>&1 && touch "$tmp/bridge_existed"
  [[ -n "$(kubepods_cgroups)" ]] && touch "$tmp/kubepods_existed"
  for d in "${OUTSIDE_DIRS[@]}"; do
    [[ -e "$d" ]] && printf '%s\n' "$d" >>"$tmp/dirs/existed"
  done
  touch "$tmp/dirs/existed"
  mv "$tmp" "$HOST_STATE"
  log "recorded host state in ${HOST_STATE#"$REPO_ROOT"/}"
}

host_state_flag() { [[ -e "$HOST_STATE/$1" ]]; }

host_state_has_chain() {
  [[ -f "$HOST_STATE/chains/$1-$2" ]] || return 1
  grep -qx -- "$3" "$HOST_STATE/chains/$1-$2"
}

host_state_dir_existed() { grep -qx -- "$1" "$HOST_STATE/dirs/existed" 2>/dev/null; }
