# shellcheck shell=bash
# The servers scripts/bench.sh measures, each started fresh on 127.0.0.1 with
# its own data directory and without access logs. Sourced by bench.sh after
# scripts/lib.sh (new_tmpdir, PIDS, as_root, EDGEDAV_BIN).
#
#   bench_server_start NAME DIR [COMPONENT]
#       NAME: lighttpd, nginx, edgedav (WebDAV on DIR/data) or, for the
#       hello-world floor, edgedav-hello / wasmtime (COMPONENT served).
#       Sets SRV_URL, SRV_PID and SRV_STARTUP_MS (from just before the exec to
#       the first answered request).
#   bench_server_stop PID

BENCH_HERE=${BENCH_HERE:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
# How long a server may take to answer its first request (edgedav compiles
# its component at start-up; the machine may be busy).
BENCH_STARTUP_TIMEOUT=${BENCH_STARTUP_TIMEOUT:-120}

bench_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The peers run as whoever runs the benchmark (nginx's workers too), so their
# data directories need no chown.
bench_write_lighttpd_conf() {
    local dir=$1 port=$2
    mkdir -p "$dir/upload"
    cat >"$dir/lighttpd.conf" <<EOF
server.modules = ( "mod_webdav" )
server.document-root = "$dir/data"
server.bind = "127.0.0.1"
server.port = $port
server.errorlog = "$dir/error.log"
server.upload-dirs = ( "$dir/upload" )
server.max-keep-alive-requests = 100000
server.max-request-size = 0
# One type for everything: Debian's include_shell of create-mime.conf.pl would
# add a perl run (~0.2 s) to the start-up time measured.
mimetype.assign = ( "" => "application/octet-stream" )
webdav.activate = "enable"
webdav.is-readonly = "disable"
# Dead properties and locks in SQLite, as edgedav keeps locks too.
webdav.sqlite-db-name = "$dir/webdav.sqlite"
EOF
}

bench_write_nginx_conf() {
    local dir=$1 port=$2
    mkdir -p "$dir/body" "$dir/proxy" "$dir/fastcgi" "$dir/uwsgi" "$dir/scgi"
    cat >"$dir/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_http_dav_ext_module.so;
# Only meaningful as root; keeps the workers able to write the data directory.
user $(id -un) $(id -gn);
worker_processes auto;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  dav_ext_lock_zone zone=davlock:10m;
  server {
    listen 127.0.0.1:$port;
    root $dir/data;
    client_max_body_size 0;
    create_full_put_path on;
    dav_methods PUT DELETE MKCOL COPY MOVE;
    dav_ext_methods PROPFIND OPTIONS LOCK UNLOCK;
    dav_ext_lock zone=davlock;
    dav_access user:rw group:rw all:r;
  }
}
EOF
}

bench_server_start() {
    local name=$1 dir=$2 component=${3:-} port="" armed ready pid t0 answer i
    mkdir -p "$dir/data"
    armed="$dir/ready.armed"
    ready="$dir/ready.out"
    case $name in
        lighttpd)
            port=$(bench_free_port)
            bench_write_lighttpd_conf "$dir" "$port" ;;
        nginx)
            port=$(bench_free_port)
            bench_write_nginx_conf "$dir" "$port" ;;
        wasmtime) port=$(bench_free_port) ;;
        edgedav | edgedav-hello) ;;
        *) echo "unknown server $name" >&2; return 1 ;;
    esac
    # The poller starts first, so its own start-up is not counted.
    local how=(--port "$port")
    [ -z "$port" ] && how=(--stdout "$dir/stdout")
    python3 "$BENCH_HERE/ready.py" "$armed" "$BENCH_STARTUP_TIMEOUT" "${how[@]}" >"$ready" &
    local poller=$!
    PIDS+=("$poller")
    for ((i = 0; i < 300; i++)); do
        [ -e "$armed" ] && break
        sleep 0.05
    done
    t0=$EPOCHREALTIME
    case $name in
        lighttpd) /usr/sbin/lighttpd -D -f "$dir/lighttpd.conf" >"$dir/stdout" 2>"$dir/stderr" </dev/null & ;;
        nginx) /usr/sbin/nginx -c "$dir/nginx.conf" -e "$dir/error.log" -g 'daemon off;' \
            >"$dir/stdout" 2>"$dir/stderr" </dev/null & ;;
        edgedav) RUST_LOG=warn "$EDGEDAV_BIN" serve --root "$dir/data" --listen 127.0.0.1:0 \
            >"$dir/stdout" 2>"$dir/stderr" </dev/null & ;;
        edgedav-hello) RUST_LOG=warn "$EDGEDAV_BIN" serve --component "$component" --root "$dir/data" \
            --listen 127.0.0.1:0 >"$dir/stdout" 2>"$dir/stderr" </dev/null & ;;
        wasmtime) wasmtime serve -S cli --addr "127.0.0.1:$port" "$component" \
            >"$dir/stdout" 2>"$dir/stderr" </dev/null & ;;
    esac
    pid=$!
    PIDS+=("$pid")
    # The poller gives up by itself after BENCH_STARTUP_TIMEOUT; a server
    # that exits (e.g. a bad config) ends the wait early.
    while bench_alive "$poller" && bench_alive "$pid"; do sleep 0.02; done
    if ! bench_alive "$pid"; then
        kill "$poller" 2>/dev/null
    fi
    if ! wait "$poller" || ! bench_alive "$pid"; then
        echo "$name did not answer within ${BENCH_STARTUP_TIMEOUT}s; its output:" >&2
        tail -n 20 "$dir/stdout" "$dir/stderr" "$dir/error.log" 2>/dev/null >&2
        bench_server_stop "$pid"
        return 1
    fi
    read -r answer SRV_URL <"$ready"
    SRV_PID=$pid
    SRV_STARTUP_MS=$(awk -v a="$answer" -v b="$t0" 'BEGIN { printf "%.0f", (a - b) * 1000 }')
}

# True while PID runs (an exited child that is not yet reaped is a zombie).
# Builtins only: it polls while a server starts, which it must not slow down.
# (The command names of the processes polled hold no spaces.)
bench_alive() {
    local _pid _comm state
    { read -r _pid _comm state _ <"/proc/$1/stat"; } 2>/dev/null || return 1
    [ "$state" != Z ]
}

# Stops a server we started: SIGTERM, then SIGKILL after 10 s.
bench_server_stop() {
    local pid=$1 i
    kill "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        bench_alive "$pid" || break
        sleep 0.1
    done
    bench_alive "$pid" && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
}
