#!/usr/bin/env bash
# Runs the litmus WebDAV suites against a cluster: three edgedav hosts over
# one store, sharing locks, quota usage and bans through one PostgreSQL,
# behind nginx balancing round-robin (every request goes to the next host,
# so a LOCK, the PUT that uses its token and the UNLOCK land on different
# hosts). The store is one bucket of a three-node Garage cluster
# (replication factor 3, see garage_cluster_start), each host talking to
# its own node.
#
#   ./scripts/cluster-litmus.sh      # standalone; the last line is
#                                    # `litmus (cluster): N passed, M failed`
#   source scripts/cluster-litmus.sh # defines litmus_cluster for scripts/test.sh
#
# Everything listens on 127.0.0.1 and is stopped at exit. PostgreSQL runs
# from Debian's binaries (/usr/lib/postgresql/*/bin), as the `postgres`
# user when run as root, with its data in a temporary directory.
set -euo pipefail

# shellcheck source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
# shellcheck source=garage.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/garage.sh"

CLUSTER_PG_PID_DIR=

# The newest PostgreSQL binaries installed.
cluster_pg_bin() {
    local bin
    bin=$(compgen -G '/usr/lib/postgresql/*/bin/initdb' | sort -V | tail -n 1)
    [ -n "$bin" ] || { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; return 1; }
    dirname "$bin"
}

# cluster_pg_run PROGRAM ARGS...: a PostgreSQL program, as postgres if root.
cluster_pg_run() {
    local program=$1
    shift
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$CLUSTER_PG_BIN/$program" "$@"
    else
        "$CLUSTER_PG_BIN/$program" "$@"
    fi
}

cluster_pg_stop() {
    if [ -n "$CLUSTER_PG_PID_DIR" ] && [ -d "$CLUSTER_PG_PID_DIR/data" ]; then
        cluster_pg_run pg_ctl -D "$CLUSTER_PG_PID_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    CLUSTER_PG_PID_DIR=
}

# Starts PostgreSQL on a free port; sets CLUSTER_PG_URL.
cluster_pg_start() {
    local dir port
    CLUSTER_PG_BIN=$(cluster_pg_bin)
    new_tmpdir dir cluster-pg
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    cluster_pg_run initdb -D "$dir/data" -U edgedav --auth=trust --no-sync -E UTF8 >"$dir/initdb.log"
    CLUSTER_PG_PID_DIR=$dir
    CLEANUP_HOOKS+=(cluster_pg_stop)
    cluster_pg_run pg_ctl -D "$dir/data" -w -t 60 -l "$dir/postgres.log" \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start >/dev/null
    CLUSTER_PG_URL="postgres://edgedav@127.0.0.1:$port/postgres?sslmode=disable"
    log "PostgreSQL on 127.0.0.1:$port, data in $dir"
}

# nginx balancing round-robin over the URLs given; sets CLUSTER_URL.
cluster_front_start() {
    local dir port servers="" url
    new_tmpdir dir cluster-nginx
    mkdir -p "$dir/body" "$dir/proxy" "$dir/fastcgi" "$dir/uwsgi" "$dir/scgi"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    for url in "$@"; do
        servers+="    server ${url#http://};"$'\n'
    done
    cat >"$dir/nginx.conf" <<EOF
user $(id -un) $(id -gn);
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  upstream edgedav {
$servers  }
  server {
    listen 127.0.0.1:$port;
    client_max_body_size 0;
    location / {
      proxy_pass http://edgedav;
      proxy_http_version 1.1;
      proxy_set_header Host \$http_host;
      proxy_request_buffering off;
      proxy_buffering off;
    }
  }
}
EOF
    nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' &
    PIDS+=("$!")
    CLUSTER_URL="http://127.0.0.1:$port"
    local i
    for ((i = 0; i < 100; i++)); do
        curl -s -o /dev/null "$CLUSTER_URL/" && break
        sleep 0.1
    done
    log "nginx round-robin on $CLUSTER_URL over $*"
}

# litmus_cluster: adds its results to LITMUS_PASSED/LITMUS_FAILED.
litmus_cluster() {
    local work user=litmus password="litmus-pass-$$-$RANDOM" hash n
    cluster_pg_start
    garage_cluster_start
    CLEANUP_HOOKS+=(garage_cluster_stop)
    # The S3 backend reads the standard AWS credential chain.
    export AWS_ACCESS_KEY_ID=$GARAGE_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$GARAGE_SECRET_KEY
    new_tmpdir work litmus-cluster
    hash=$(printf '%s' "$password" | "$EDGEDAV_BIN" hash-password)
    for n in 1 2 3; do
        cat >"$work/host$n.toml" <<TOML
[cluster]
database_url = "$CLUSTER_PG_URL"
node_name = "host$n"

[[bindings]]
listen = "127.0.0.1:0"

[[users]]
name = "$user"
password_hash = "$hash"
home = { backend = "s3", bucket = "$GARAGE_BUCKET", prefix = "litmus", endpoint = "${GARAGE_CLUSTER_S3[n - 1]}", region = "$GARAGE_REGION", path_style = true }
quota_bytes = 1000000000
TOML
        "$EDGEDAV_BIN" check-config "$work/host$n.toml" >/dev/null
        start_server "HOST$n" --config "$work/host$n.toml"
    done
    cluster_front_start "$HOST1_URL" "$HOST2_URL" "$HOST3_URL"
    run_litmus "cluster of three behind round-robin nginx" "$CLUSTER_URL" "$user" "$password"
    stop_server "$HOST1_PID"
    stop_server "$HOST2_PID"
    stop_server "$HOST3_PID"
    # Every host answered its share (the access log has a line per request;
    # round-robin gives each a third).
    local served=() total=0
    garage_cluster_stop
    for n in 1 2 3; do
        local log_var="HOST${n}_LOG"
        served[n]=$(grep -c 'edgedav::access' "${!log_var}" || true)
        total=$((total + served[n]))
    done
    log "requests answered by each host: ${served[*]} (of $total)"
    for n in 1 2 3; do
        if ((served[n] * 4 < total)); then
            echo "host$n answered ${served[n]} of $total requests: the front did not spread them" >&2
            LITMUS_FAILED=$((LITMUS_FAILED + 1))
        fi
    done
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    command -v litmus >/dev/null 2>&1 || { echo "litmus is not installed (apt-get install litmus)" >&2; exit 1; }
    command -v nginx >/dev/null 2>&1 || { echo "nginx is not installed (apt-get install nginx)" >&2; exit 1; }
    [ -x "$EDGEDAV_BIN" ] || build_workspace
    litmus_cluster
    echo
    echo "litmus (cluster): $LITMUS_PASSED passed, $LITMUS_FAILED failed"
    ((LITMUS_FAILED == 0))
fi
