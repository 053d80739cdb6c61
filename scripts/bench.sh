#!/usr/bin/env bash
# The benchmark of edgedav against the WebDAV servers users would pick
# instead (lighttpd with mod_webdav, nginx with dav-ext), on loopback.
#
#   ./scripts/bench.sh [--duration S] [--rounds N] [--servers "lighttpd nginx edgedav"] [--smoke]
#
# For each server in turn, started fresh on 127.0.0.1 with an empty data
# directory: builds the fixture through the server itself (MKCOL, PUT: N x 4
# KiB files in one collection, 5 in another, a 1 MiB file, a big file), then
# measures GET 4 KiB and 1 MiB (wrk, 32 connections), the big file over one
# connection (curl, median of 3), PROPFIND Depth 1 over the N files (allprop
# and 5 named properties) and over the 5 (named; 8 connections each), PUT 4
# KiB new files (32 connections) and PUT of the big file (curl, median of
# 3); the server's CPU time per GET 4 KiB and
# per PROPFIND (all its processes and threads, from /proc: the PROPFIND rate
# of a server with several worker processes, nginx, depends on how the
# connections happen to spread over them, its CPU per request does not),
# its peak RSS and its start-up time.
# Then the hello-world floor: the test component tests/fixtures/misbehave
# (answers `ok`) served by edgedav's host and by stock `wasmtime serve`.
# Before the servers, the disk's durable-write ceiling (bench/disk.py: new
# 4 KiB files and the big file committed as edgedav commits, no server).
# Prints one markdown table, a column per server, and the ceiling below it.
#
#   --duration S   seconds per wrk figure (default 8)
#   --rounds N     measure every server N times (default 1), the order of
#                  the servers rotated each round, and print each figure's
#                  median with the range of edgedav's ratio over the rounds:
#                  on a shared machine a figure moves by a third between
#                  runs minutes apart, and one round puts each server in
#                  one stretch of time
#   --servers L    which of lighttpd, nginx, edgedav to measure (default all
#                  three; the hello-world floor runs with edgedav)
#   --smoke        1 s per figure, 50 files, an 8 MiB big file moved once:
#                  a check that every server answers every request
#                  correctly, in < 60 s
#
# Exits non-zero when any request failed (a non-2xx answer, a socket error,
# a wrong body) or a server did not start; the figure shows FAIL.
# Installs lighttpd, nginx and their WebDAV modules, wrk, curl and python3
# with apt-get when missing. EDGEDAV_BIN (default target/release/edgedav)
# is the server measured; RUST_LOG=warn, no access logs anywhere.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$(pwd)
# shellcheck source=lib.sh
source "$REPO/scripts/lib.sh"
BENCH_HERE="$REPO/scripts/bench"
# shellcheck source=bench/servers.sh
source "$BENCH_HERE/servers.sh"

DURATION=8
ROUNDS=1
ROUND=1
SERVERS="lighttpd nginx edgedav"
SMOKE=0
while (($#)); do
    case $1 in
        --duration) DURATION=${2:?--duration needs seconds}; shift 2 ;;
        --rounds) ROUNDS=${2:?--rounds needs a count}; shift 2 ;;
        --servers) SERVERS=${2:?--servers needs a list}; shift 2 ;;
        --smoke) SMOKE=1; shift ;;
        -h | --help) sed -n '2,42p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
for server in $SERVERS; do
    case $server in lighttpd | nginx | edgedav) ;; *) echo "unknown server $server" >&2; exit 2 ;; esac
done
[[ $DURATION =~ ^[1-9][0-9]*$ ]] || { echo "--duration takes whole seconds" >&2; exit 2; }
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "--rounds takes a positive count" >&2; exit 2; }

FILES=1000
FEW=5
BIG_MIB=256
REPS=3
if ((SMOKE)); then
    DURATION=1
    FILES=50
    BIG_MIB=8
    REPS=1
fi
CURL=(curl -sS --noproxy '*' --max-time 300)
FAILURES=()

# ---------------------------------------------------------------- setup
ensure_tools() {
    local packages=() server
    command -v wrk >/dev/null 2>&1 || packages+=(wrk)
    command -v curl >/dev/null 2>&1 || packages+=(curl)
    command -v python3 >/dev/null 2>&1 || packages+=(python3)
    for server in $SERVERS; do
        case $server in
            lighttpd) [ -e /usr/lib/lighttpd/mod_webdav.so ] || packages+=(lighttpd lighttpd-mod-webdav) ;;
            nginx) [ -e /usr/lib/nginx/modules/ngx_http_dav_ext_module.so ] ||
                packages+=(nginx libnginx-mod-http-dav-ext) ;;
        esac
    done
    ((${#packages[@]})) || return 0
    log "installing ${packages[*]}"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "${packages[@]}"
}

# The hello-world component, built as tests/tests/sandbox.rs builds it.
HELLO_WASM="$REPO/target/fixtures/wasm32-wasip2/release/edgedav_misbehave.wasm"
ensure_hello_component() {
    [ -f "$HELLO_WASM" ] && return 0
    log "building tests/fixtures/misbehave (wasm32-wasip2)"
    env -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS -u CARGO_BUILD_TARGET -u CARGO_TARGET_DIR \
        cargo build --release --target wasm32-wasip2 \
        --manifest-path "$REPO/tests/fixtures/misbehave/Cargo.toml" --target-dir "$REPO/target/fixtures"
}

# Random source files, uploaded to every server.
make_sources() {
    new_tmpdir SRC bench-src
    head -c 4096 /dev/urandom >"$SRC/4k.bin"
    head -c 1048576 /dev/urandom >"$SRC/1m.bin"
    head -c $((BIG_MIB << 20)) /dev/urandom >"$SRC/big.bin"
    BIG_SHA=$(sha256sum <"$SRC/big.bin" | cut -d' ' -f1)
    PROPFIND_NAMED='<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop><D:getcontentlength/><D:getlastmodified/><D:getetag/><D:resourcetype/><D:displayname/></D:prop></D:propfind>'
}

# ---------------------------------------------------------------- recording
RESULTS=""
record() { echo "$1 $2 $3 $ROUND" >>"$RESULTS"; }
# fail SERVER METRIC WHY: the figure shows FAIL and the run exits non-zero.
fail() {
    record "$1" "$2" FAIL
    FAILURES+=("$1 $2: $3")
    echo "FAIL: $1 $2: $3" >&2
}
calc() { awk "BEGIN { printf \"%.${2:-0}f\", $1 }"; }
cpu_now() { python3 "$BENCH_HERE/proc.py" cpu "$SRV_PID"; }

# ---------------------------------------------------------------- fixture
# check WHAT EXPECTED ACTUAL: a failed check is a failure of the server's run.
check() {
    [ "$2" = "$3" ] && return 0
    echo "$SERVER: $1: expected $2, got $3" >&2
    FIXTURE_OK=0
}

status_of() { "${CURL[@]}" -o /dev/null -w '%{http_code}' "$@"; }

# propfind_count BODY [COLLECTION]: the status and number of <response>
# elements of a Depth-1 PROPFIND of COLLECTION (default small/; an empty BODY
# asks for allprop).
propfind_count() {
    local out="$RUN/propfind.xml" code args=()
    [ -n "$1" ] && args=(-H 'Content-Type: application/xml; charset=utf-8' --data-binary "$1")
    code=$("${CURL[@]}" -X PROPFIND -H 'Depth: 1' "${args[@]+"${args[@]}"}" -o "$out" -w '%{http_code}' "$BASE/${2:-small/}")
    echo "$code $(grep -o '<[A-Za-z0-9]*:\{0,1\}response[ >]' "$out" | wc -l)"
}

build_fixture() {
    local i config="$RUN/put-small.curlrc" codes
    FIXTURE_OK=1
    for c in "" small/ few/ put/; do
        check "MKCOL /bench/$c" 201 "$(status_of -X MKCOL "$BASE/$c")"
    done
    # One curl, one connection, the files in sequence.
    : >"$config"
    for ((i = 1; i <= FILES; i++)); do
        printf 'upload-file = "%s"\nurl = "%s"\noutput = "/dev/null"\n' \
            "$SRC/4k.bin" "$BASE/small/f$i.bin" >>"$config"
    done
    # A folder as people keep them: a few files.
    for ((i = 1; i <= FEW; i++)); do
        printf 'upload-file = "%s"\nurl = "%s"\noutput = "/dev/null"\n' \
            "$SRC/4k.bin" "$BASE/few/f$i.bin" >>"$config"
    done
    codes=$("${CURL[@]}" -H 'Expect:' -K "$config" -w '%{http_code}\n' | grep -cE '^20[14]$' || true)
    check "PUT of the $FILES + $FEW small files (2xx)" "$((FILES + FEW))" "$codes"
    check "PUT 1m.bin" 201 "$(status_of -H 'Expect:' -T "$SRC/1m.bin" "$BASE/1m.bin")"
    check "PUT big.bin" 201 "$(status_of -H 'Expect:' -T "$SRC/big.bin" "$BASE/big.bin")"
    check "GET f1.bin" "200 4096" "$("${CURL[@]}" -o /dev/null -w '%{http_code} %{size_download}' "$BASE/small/f1.bin")"
    check "GET big.bin (sha256)" "$BIG_SHA" "$("${CURL[@]}" "$BASE/big.bin" | sha256sum | cut -d' ' -f1)"
    check "PROPFIND allprop (status, responses)" "207 $((FILES + 1))" "$(propfind_count "")"
    check "PROPFIND named (status, responses)" "207 $((FILES + 1))" "$(propfind_count "$PROPFIND_NAMED")"
    check "PROPFIND named of few/ (status, responses)" "207 $((FEW + 1))" "$(propfind_count "$PROPFIND_NAMED" few/)"
    ((FIXTURE_OK))
}

# ---------------------------------------------------------------- figures
# run_wrk METRIC CONNS URL [MODE [BODY]]: one bounded wrk run with
# scripts/bench/wrk.lua; sets W_REQUESTS, W_SECONDS and W_CPU (server CPU
# seconds). Returns 1, after recording the failure, when any request failed.
run_wrk() {
    local metric=$1 conns=$2 url=$3 mode=${4:-get} body=${5:-} out="$RUN/$1.wrk" c0 c1 line
    c0=$(cpu_now)
    BENCH_MODE=$mode BENCH_BODY=$body timeout --kill-after=5 $((DURATION + 30)) \
        wrk -t1 -c"$conns" -d"${DURATION}s" --timeout 10s -s "$BENCH_HERE/wrk.lua" "$url" >"$out" 2>&1 || true
    c1=$(cpu_now)
    line=$(grep '^WRK ' "$out" || true)
    if [[ ! $line =~ requests=([0-9]+)\ seconds=([0-9.]+)\ bytes=[0-9]+\ non2xx=([0-9]+)\ socket_errors=([0-9]+) ]]; then
        fail "$SERVER" "$metric" "wrk gave no result (see below)"
        cat "$out" >&2
        return 1
    fi
    W_REQUESTS=${BASH_REMATCH[1]}
    W_SECONDS=${BASH_REMATCH[2]}
    if ((BASH_REMATCH[3] + BASH_REMATCH[4] > 0 || W_REQUESTS == 0)); then
        fail "$SERVER" "$metric" "$W_REQUESTS requests, ${BASH_REMATCH[3]} non-2xx, ${BASH_REMATCH[4]} socket errors"
        return 1
    fi
    W_CPU=$(calc "$c1 - $c0" 2)
}

rps() { calc "$W_REQUESTS / $W_SECONDS"; }
cpu_us_per_request() { calc "$W_CPU * 1e6 / $W_REQUESTS" 1; }

# median_transfer METRIC put|get: the big file over one connection, REPS times.
median_transfer() {
    local metric=$1 direction=$2 r out code size seconds rates=()
    for ((r = 1; r <= REPS; r++)); do
        if [ "$direction" = get ]; then
            out=$("${CURL[@]}" -o /dev/null -w '%{http_code} %{size_download} %{time_total}' "$BASE/big.bin")
        else
            out=$("${CURL[@]}" -H 'Expect:' -T "$SRC/big.bin" -o /dev/null \
                -w '%{http_code} %{size_upload} %{time_total}' "$BASE/put/big-$r.bin")
        fi
        read -r code size seconds <<<"$out"
        if [[ $code != 20? || $size != $((BIG_MIB << 20)) ]]; then
            fail "$SERVER" "$metric" "$direction big file: status $code, $size bytes"
            return 1
        fi
        rates+=("$(calc "$size / $seconds / 1e6")")
        # Untimed: keeps the disk use bounded.
        [ "$direction" = put ] && status_of -X DELETE "$BASE/put/big-$r.bin" >/dev/null
    done
    record "$SERVER" "$metric" "$(printf '%s\n' "${rates[@]}" | sort -n | sed -n "$(((REPS + 1) / 2))p")"
}

# measure_propfind NAME COLLECTION BODY: Depth-1 PROPFINDs of COLLECTION
# (8 connections; an empty BODY asks for allprop), recorded as NAME_rps and
# NAME_cpu_us.
measure_propfind() {
    if run_wrk "$1_rps" 8 "$BASE/$2" propfind "$3"; then
        record "$SERVER" "$1_rps" "$(calc "$W_REQUESTS / $W_SECONDS" 1)"
        record "$SERVER" "$1_cpu_us" "$(cpu_us_per_request)"
    fi
}

# ---------------------------------------------------------------- per server
measure_webdav() {
    SERVER=$1
    new_tmpdir RUN "bench-$SERVER"
    # What was written before (the sources, the previous server's files:
    # the peers do not fsync theirs) goes to disk now, not while this
    # server is measured.
    sync
    log "$SERVER: start"
    if ! bench_server_start "$SERVER" "$RUN"; then
        fail "$SERVER" startup_ms "did not start"
        return
    fi
    record "$SERVER" startup_ms "$SRV_STARTUP_MS"
    BASE="$SRV_URL/bench"
    log "$SERVER (pid $SRV_PID, $SRV_URL, up in $SRV_STARTUP_MS ms): fixture"
    if ! build_fixture; then
        fail "$SERVER" fixture "the fixture could not be built or read back"
    else
        log "$SERVER: figures, ${DURATION}s each"
        if run_wrk get_4k_rps 32 "$BASE/small/f1.bin"; then
            record "$SERVER" get_4k_rps "$(rps)"
            record "$SERVER" get_4k_cpu_us "$(cpu_us_per_request)"
        fi
        if run_wrk get_1m_mbps 32 "$BASE/1m.bin"; then
            record "$SERVER" get_1m_mbps "$(calc "$W_REQUESTS * 1048576 / $W_SECONDS / 1e6")"
        fi
        median_transfer get_big_mbps get || true
        measure_propfind propfind_allprop small/ ""
        measure_propfind propfind_named small/ "$PROPFIND_NAMED"
        measure_propfind propfind_few few/ "$PROPFIND_NAMED"
        if run_wrk put_4k_rps 32 "$BASE/put/" put; then
            record "$SERVER" put_4k_rps "$(rps)"
        fi
        median_transfer put_big_mbps put || true
    fi
    if bench_alive "$SRV_PID"; then
        record "$SERVER" peak_rss_mib "$(calc "$(python3 "$BENCH_HERE/proc.py" hwm "$SRV_PID") / 1024")"
    else
        fail "$SERVER" peak_rss_mib "the server exited during the run"
    fi
    bench_server_stop "$SRV_PID"
    # $RUN stays until the benchmark ends (see KEEP_FILES).
}

# KEEP_FILES: what a measurement wrote is removed when the benchmark ends
# (the EXIT trap of scripts/lib.sh), not after it. On ext4 without a
# journal (this machine kind's root) the kernel does not reuse the inode of
# a file deleted less than 1 to 6 minutes ago, and every file created
# meanwhile pays a scan past each such inode (recently_deleted() in the
# inode allocator): right after 29,000 files were deleted, 5 s of 4 KiB
# PUTs stored 4,522 files instead of 14,692, and a server's run leaves
# 50,000-odd.

# measure_disk: the durable-write ceiling of this disk, without a server
# (scripts/bench/disk.py commits as edgedav does: write, fsync, rename,
# fsync the directory); run first.
measure_disk() {
    local dir small big
    new_tmpdir dir bench-disk
    log "disk: durable-write ceiling"
    small=$(python3 "$BENCH_HERE/disk.py" small "$dir" "$DURATION" 32)
    big=$(python3 "$BENCH_HERE/disk.py" big "$SRC/big.bin" "$dir" "$REPS")
    DISK_NOTE="The disk alone, committing as edgedav does with no server in the way (\`scripts/bench/disk.py\`): $small new 4 KiB files/s from 32 threads, $big MB/s for the big file (median of $REPS): the ceiling of edgedav's † rows."
    # $dir stays until the benchmark ends (see KEEP_FILES).
}

# measure_hello NAME COLUMN: the hello-world component under NAME's host.
measure_hello() {
    SERVER=$2
    new_tmpdir RUN "bench-$1"
    log "$1: hello-world floor"
    if ! bench_server_start "$1" "$RUN" "$HELLO_WASM"; then
        fail "$SERVER" hello_rps "$1 did not start"
        return
    fi
    local answer
    answer=$("${CURL[@]}" -w ' %{http_code}' "$SRV_URL/" || true)
    if [ "$answer" != $'ok\n 200' ]; then
        fail "$SERVER" hello_rps "GET / answered '$answer', not 'ok' 200"
    elif run_wrk hello_rps 32 "$SRV_URL/"; then
        record "$SERVER" hello_rps "$(rps)"
        record "$SERVER" hello_cpu_us "$(cpu_us_per_request)"
    fi
    bench_server_stop "$SRV_PID"
}

# rotated K WORDS...: the words, the first K moved to the end.
rotated() {
    local k=$1
    shift
    k=$((k % $#))
    echo "${@:k+1}" "${@:1:k}"
}

main() {
    local started=$SECONDS notes=()
    ensure_tools
    if [[ " $SERVERS " == *" edgedav "* ]]; then
        [ -x "$EDGEDAV_BIN" ] || { echo "no $EDGEDAV_BIN: cargo build --release --workspace" >&2; exit 2; }
        ensure_hello_component
    fi
    new_tmpdir RESULTS_DIR bench-results
    RESULTS="$RESULTS_DIR/results"
    : >"$RESULTS"
    make_sources
    DISK_NOTE=""
    [[ " $SERVERS " == *" edgedav "* ]] && measure_disk
    for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
        ((ROUNDS == 1)) || log "round $ROUND of $ROUNDS"
        for server in $(rotated $((ROUND - 1)) $SERVERS); do
            measure_webdav "$server"
        done
        if [[ " $SERVERS " == *" edgedav "* ]]; then
            measure_hello edgedav-hello edgedav
            command -v wasmtime >/dev/null 2>&1 && measure_hello wasmtime wasmtime
        fi
    done
    if [[ " $SERVERS " == *" edgedav "* ]] && ! command -v wasmtime >/dev/null 2>&1; then
        notes+=("wasmtime is not installed: no \`wasmtime serve\` column for the hello-world floor.")
    fi

    echo
    echo "### edgedav benchmark ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); ${DURATION}s per wrk figure; wrk -t1; $ROUNDS round(s))"
    echo
    python3 "$BENCH_HERE/report.py" "$RESULTS" "$FILES" "$FEW" "$BIG_MIB" "$REPS"
    echo "Client and servers share this machine's cores: compare servers within one run."
    [ -n "$DISK_NOTE" ] && echo "$DISK_NOTE"
    for note in "${notes[@]+"${notes[@]}"}"; do echo "$note"; done
    echo
    echo "bench: $((SECONDS - started)) s"
    if ((${#FAILURES[@]})); then
        echo "FAILED:"
        printf '  %s\n' "${FAILURES[@]}"
        exit 1
    fi
}

main
