# shellcheck shell=bash
# Garage (https://garagehq.deuxfleurs.fr), a production S3-compatible store,
# as a single local node for the S3 backend's tests. Source this file:
#
#   source scripts/garage.sh
#   garage_ensure_installed          # cargo install --locked garage 2.5.0 (S3 + SQLite) if missing
#   garage_start                     # a fresh node on 127.0.0.1, data in a temp dir
#   edgedav serve "${GARAGE_EDGEDAV_ARGS[@]}" --s3-prefix some/prefix ...
#   garage_stop                      # stops the node and removes its data
#
# garage_start exports what the end-to-end tests (tests/tests/s3.rs) and
# edgedav need: EDGEDAV_S3_ENDPOINT, EDGEDAV_S3_BUCKET, EDGEDAV_S3_REGION and
# the test credentials in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (which the
# S3 backend reads through the standard AWS credential chain). It also sets
# GARAGE_PID, GARAGE_DIR and the array GARAGE_EDGEDAV_ARGS (the `edgedav
# serve` flags for this node). Ports are free ports picked at start, unless
# GARAGE_S3_PORT / GARAGE_RPC_PORT / GARAGE_ADMIN_PORT are set.

GARAGE_VERSION=${GARAGE_VERSION:-2.5.0}
# Fixed test credentials (a Garage key id is GK + 24 hex digits, its secret
# 64 hex digits) and bucket.
GARAGE_ACCESS_KEY=${GARAGE_ACCESS_KEY:-GK0123456789abcdef01234567}
GARAGE_SECRET_KEY=${GARAGE_SECRET_KEY:-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef}
GARAGE_BUCKET=${GARAGE_BUCKET:-edgedav}
GARAGE_REGION=garage
# Seconds to wait for the node to answer /health.
GARAGE_STARTUP_TIMEOUT=${GARAGE_STARTUP_TIMEOUT:-60}

garage_log() { printf '==> garage: %s\n' "$*" >&2; }

# Installs garage with cargo unless it is on PATH already.
garage_ensure_installed() {
    if command -v garage >/dev/null 2>&1; then
        return 0
    fi
    garage_log "installing garage $GARAGE_VERSION (cargo install, takes 9-20 minutes)"
    # Only what the tests use: the S3 API on the SQLite metadata engine
    # (without LMDB, metrics and K2V the build takes half the time); the
    # full default build if that ever fails.
    cargo install --locked --no-default-features --features bundled-libs,sqlite \
        garage --version "$GARAGE_VERSION" ||
        cargo install --locked garage --version "$GARAGE_VERSION"
    command -v garage >/dev/null 2>&1 || {
        echo "garage is not on PATH after installing it (is ~/.cargo/bin on PATH?)" >&2
        return 1
    }
}

# Prints N free TCP ports on 127.0.0.1.
garage_free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# garage_config DIR REPLICATION SECRET S3 RPC ADMIN: writes DIR/garage.toml
# for a node on 127.0.0.1 keeping its data in DIR, with the replication
# factor, the RPC secret (a digit, repeated) and the three ports given.
garage_config() {
    local dir=$1 replication=$2 secret=$3 s3=$4 rpc=$5 admin=$6
    cat >"$dir/garage.toml" <<EOF
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "sqlite"
replication_factor = $replication
rpc_bind_addr = "127.0.0.1:$rpc"
rpc_public_addr = "127.0.0.1:$rpc"
rpc_secret = "$(printf '%064d' "$secret")"

[s3_api]
s3_region = "$GARAGE_REGION"
api_bind_addr = "127.0.0.1:$s3"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$admin"
EOF
}

# Starts a single-node Garage with a default bucket and key; returns once its
# admin API answers /health with 200.
garage_start() {
    if [ -n "${GARAGE_PID:-}" ] && kill -0 "$GARAGE_PID" 2>/dev/null; then
        garage_log "already running (pid $GARAGE_PID)"
        return 0
    fi
    command -v garage >/dev/null 2>&1 || garage_ensure_installed || return 1
    local ports s3 rpc admin i
    read -r s3 rpc admin <<<"$(garage_free_ports 3)"
    s3=${GARAGE_S3_PORT:-$s3}
    rpc=${GARAGE_RPC_PORT:-$rpc}
    admin=${GARAGE_ADMIN_PORT:-$admin}
    GARAGE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/edgedav-garage.XXXXXX")
    garage_config "$GARAGE_DIR" 1 7 "$s3" "$rpc" "$admin"
    GARAGE_DEFAULT_ACCESS_KEY=$GARAGE_ACCESS_KEY \
        GARAGE_DEFAULT_SECRET_KEY=$GARAGE_SECRET_KEY \
        GARAGE_DEFAULT_BUCKET=$GARAGE_BUCKET \
        RUST_LOG=${GARAGE_LOG:-warn} \
        garage -c "$GARAGE_DIR/garage.toml" server --single-node --default-bucket \
        >"$GARAGE_DIR/garage.log" 2>&1 &
    GARAGE_PID=$!
    for ((i = 0; i < GARAGE_STARTUP_TIMEOUT * 10; i++)); do
        if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$admin/health")" = 200 ]; then
            break
        fi
        if ! kill -0 "$GARAGE_PID" 2>/dev/null; then
            echo "garage exited during startup; its log:" >&2
            tail -n 40 "$GARAGE_DIR/garage.log" >&2
            GARAGE_PID=
            return 1
        fi
        sleep 0.1
    done
    if ((i >= GARAGE_STARTUP_TIMEOUT * 10)); then
        echo "garage did not become healthy within ${GARAGE_STARTUP_TIMEOUT}s; its log:" >&2
        tail -n 40 "$GARAGE_DIR/garage.log" >&2
        garage_stop
        return 1
    fi
    export EDGEDAV_S3_ENDPOINT="http://127.0.0.1:$s3"
    export EDGEDAV_S3_BUCKET=$GARAGE_BUCKET
    export EDGEDAV_S3_REGION=$GARAGE_REGION
    export AWS_ACCESS_KEY_ID=$GARAGE_ACCESS_KEY
    export AWS_SECRET_ACCESS_KEY=$GARAGE_SECRET_KEY
    GARAGE_ADMIN_URL="http://127.0.0.1:$admin"
    GARAGE_EDGEDAV_ARGS=(--s3-bucket "$GARAGE_BUCKET" --s3-endpoint "$EDGEDAV_S3_ENDPOINT"
        --s3-region "$GARAGE_REGION" --s3-path-style)
    garage_log "pid $GARAGE_PID, S3 on $EDGEDAV_S3_ENDPOINT, bucket $GARAGE_BUCKET, data in $GARAGE_DIR"
}

# Stops the node started by garage_start and removes its data.
garage_stop() {
    if [ -n "${GARAGE_PID:-}" ]; then
        kill "$GARAGE_PID" 2>/dev/null || true
        wait "$GARAGE_PID" 2>/dev/null || true
        GARAGE_PID=
    fi
    if [ -n "${GARAGE_DIR:-}" ] && [ -d "$GARAGE_DIR" ]; then
        rm -rf "$GARAGE_DIR"
    fi
    GARAGE_DIR=
    unset EDGEDAV_S3_ENDPOINT EDGEDAV_S3_BUCKET EDGEDAV_S3_REGION
}

# ---------------------------------------------------------------- cluster

# garage_cluster_start: three Garage nodes on 127.0.0.1 (one zone each),
# replication factor 2, with the test bucket and key. Sets GARAGE_CLUSTER_S3
# (the three nodes' S3 endpoints, in order) and GARAGE_CLUSTER_DIR; stop
# with garage_cluster_stop. Does not touch the single node of garage_start.
#
# Why 2 and not 3: a Garage node filters deleted objects out of its part of
# a listing before the parts are merged, so with factor 3 (writes
# acknowledged by 2 of 3 nodes) a listing that asks the third node shows an
# object for a while after its deletion was acknowledged. Seen here: a
# DELETE of /litmus/ answered 204 through one node, then a MKCOL through
# another answered 405 because its listing still held the deleted keys
# (about 1 run in 8 of the cluster litmus run). With factor 2 a write is
# acknowledged by both replicas, so every listing after it agrees.
garage_cluster_start() {
    command -v garage >/dev/null 2>&1 || garage_ensure_installed || return 1
    local n s3 rpc admin dir ids=() id i
    GARAGE_CLUSTER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/edgedav-garage-cluster.XXXXXX")
    GARAGE_CLUSTER_PIDS=()
    GARAGE_CLUSTER_S3=()
    GARAGE_CLUSTER_ADMIN=()
    for n in 1 2 3; do
        read -r s3 rpc admin <<<"$(garage_free_ports 3)"
        dir="$GARAGE_CLUSTER_DIR/node$n"
        mkdir -p "$dir"
        garage_config "$dir" 2 8 "$s3" "$rpc" "$admin"
        RUST_LOG=${GARAGE_LOG:-warn} garage -c "$dir/garage.toml" server >"$dir/garage.log" 2>&1 &
        GARAGE_CLUSTER_PIDS+=("$!")
        GARAGE_CLUSTER_S3+=("http://127.0.0.1:$s3")
        GARAGE_CLUSTER_ADMIN+=("http://127.0.0.1:$admin")
    done
    local cli=(garage -c "$GARAGE_CLUSTER_DIR/node1/garage.toml")
    for n in 1 2 3; do
        for ((i = 0; i < GARAGE_STARTUP_TIMEOUT * 10; i++)); do
            id=$(garage -c "$GARAGE_CLUSTER_DIR/node$n/garage.toml" node id -q 2>/dev/null) && break
            sleep 0.1
        done
        [ -n "$id" ] || { garage_cluster_failed "node $n did not start"; return 1; }
        ids+=("$id")
    done
    "${cli[@]}" node connect "${ids[1]}" >/dev/null
    "${cli[@]}" node connect "${ids[2]}" >/dev/null
    for n in 0 1 2; do
        "${cli[@]}" layout assign -z "zone$((n + 1))" -c 1G "${ids[n]%%@*}" >/dev/null
    done
    "${cli[@]}" layout apply --version 1 >/dev/null
    for ((i = 0; i < GARAGE_STARTUP_TIMEOUT * 10; i++)); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "${GARAGE_CLUSTER_ADMIN[0]}/health")" = 200 ] && break
        sleep 0.1
    done
    ((i < GARAGE_STARTUP_TIMEOUT * 10)) || { garage_cluster_failed "the cluster did not become healthy"; return 1; }
    "${cli[@]}" key import --yes -n edgedav "$GARAGE_ACCESS_KEY" "$GARAGE_SECRET_KEY" >/dev/null
    "${cli[@]}" bucket create "$GARAGE_BUCKET" >/dev/null
    "${cli[@]}" bucket allow --read --write --owner "$GARAGE_BUCKET" --key edgedav >/dev/null
    garage_log "three nodes (replication factor 2), S3 on ${GARAGE_CLUSTER_S3[*]}, data in $GARAGE_CLUSTER_DIR"
}

garage_cluster_failed() {
    local n
    echo "garage cluster: $1; the nodes' logs:" >&2
    for n in 1 2 3; do
        tail -n 20 "$GARAGE_CLUSTER_DIR/node$n/garage.log" >&2 || true
    done
    garage_cluster_stop
}

# Stops the nodes of garage_cluster_start and removes their data.
garage_cluster_stop() {
    local pid
    for pid in "${GARAGE_CLUSTER_PIDS[@]+"${GARAGE_CLUSTER_PIDS[@]}"}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    GARAGE_CLUSTER_PIDS=()
    if [ -n "${GARAGE_CLUSTER_DIR:-}" ] && [ -d "$GARAGE_CLUSTER_DIR" ]; then
        rm -rf "$GARAGE_CLUSTER_DIR"
    fi
    GARAGE_CLUSTER_DIR=
}
