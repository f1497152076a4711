# shellcheck shell=bash disable=SC2034  # the settings here are used by the scripts that source it
# Settings shared by hack/demo/{up,down}. Sourced after hack/local-cluster/lib.sh, never run.

DEMO_DIR="$(realpath -m "${DEMO_DIR:-$REPO_ROOT/.demo}")"
DEMO_ENV="$DEMO_DIR/env"
# The demo's own processes (MinIO, the facade forwarder) are recorded here, apart from the
# cluster's, so each `down` stops only what its `up` started.
LOGS="$DEMO_DIR/logs"
PIDS="$DEMO_DIR/pids"

NAMESPACE="${DEMO_NAMESPACE:-download-operator}"
RELEASE="download-operator"
KIND_CLUSTER="${KIND_CLUSTER:-}"
MINIO_PORT="${DEMO_MINIO_PORT:-9000}"
FACADE_PORT="${DEMO_FACADE_PORT:-8080}"
FACADE_URL="http://127.0.0.1:$FACADE_PORT"
FACADE_NODE_PORT=30080
# Fixed controller Service addresses inside each cluster's Service range (10.0.0.0/24 for the
# local cluster, kind's default 10.96.0.0/16), because neither path relies on cluster DNS.
LOCAL_CONTROLLER_SERVICE_IP="10.0.0.80"
KIND_CONTROLLER_SERVICE_IP="10.96.0.80"
# The demo's one event sink: a port on the host, where the e2e suite listens while its events
# spec runs, and the Secret in the demo namespace holding the sink's HMAC key.
EVENT_SINK_PORT="${DEMO_EVENT_SINK_PORT:-18091}"
EVENT_SINK_SECRET="download-operator-event-sink"
EVENT_SINK_KEY_FILE="$DEMO_DIR/event-sink.key"
SOURCE_BUCKET="files"
ARCHIVE_BUCKET="downloads"
# ID=SIZE, 1 MiB to 512 MiB. At DEMO_BYTES_PER_SECOND (8 MiB/s) 70000+70007 take about 12 s and
# 70014 about a minute: longer than the 60 s a typical reverse proxy allows a request.
DEMO_FILES=(14000=1Mi 70007=32Mi 70000=64Mi 21000=128Mi 70014=512Mi)
DEMO_BYTES_PER_SECOND=$((8 << 20))

log() { printf '[demo] %s\n' "$*" >&2; }

# MinIO's root credentials are generated once per state dir and kept, so restarts keep working
# with the Secret already in the cluster.
start_minio() {
  [[ -n "${MINIO_BIN:-}" ]] || MINIO_BIN="$("$REPO_ROOT/hack/tools.sh" minio)/minio"
  if [[ ! -s "$DEMO_DIR/minio.env" ]]; then
    printf 'MINIO_ACCESS_KEY=demo-%s\nMINIO_SECRET_KEY=%s\n' "$(openssl rand -hex 6)" "$(openssl rand -hex 20)" \
      >"$DEMO_DIR/minio.env"
    chmod 600 "$DEMO_DIR/minio.env"
  fi
  # The operator gets a MinIO user of its own, never root (a state dir from before it had none).
  if ! grep -q '^OPERATOR_ACCESS_KEY=' "$DEMO_DIR/minio.env"; then
    # A random id, like root's, so that a search for it finds only the key itself.
    printf 'OPERATOR_ACCESS_KEY=operator-%s\nOPERATOR_SECRET_KEY=%s\n' "$(openssl rand -hex 6)" "$(openssl rand -hex 20)" \
      >>"$DEMO_DIR/minio.env"
  fi
  # shellcheck disable=SC1091
  source "$DEMO_DIR/minio.env"
  if is_running minio; then
    log "MinIO already running (pid $(pid_of minio))"
  else
    port_open 127.0.0.1 "$MINIO_PORT" && die "port $MINIO_PORT is taken by another process; stop it or set DEMO_MINIO_PORT"
    mkdir -p "$DEMO_DIR/minio-data"
    # All addresses: the host uses 127.0.0.1, Pods use the node IP.
    MINIO_ROOT_USER="$MINIO_ACCESS_KEY" MINIO_ROOT_PASSWORD="$MINIO_SECRET_KEY" MINIO_BROWSER=off \
      start minio "$MINIO_BIN" server "$DEMO_DIR/minio-data" --address ":$MINIO_PORT" --quiet
  fi
  wait_for "MinIO to be ready" 60 curl -sf "http://127.0.0.1:$MINIO_PORT/minio/health/ready"
}

