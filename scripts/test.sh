#!/usr/bin/env bash
# The one test command of edgedav.
#
#   ./scripts/test.sh
#
# On a fresh Debian machine with only rustup/cargo it installs what is missing
# (the toolchain and wasm32-wasip2 target from rust-toolchain.toml, litmus),
# builds the server, runs `cargo test --workspace --release` (unit tests and the
# end-to-end tests in tests/), then runs the litmus WebDAV suites against a
# freshly started server. Safe to run again: every step is idempotent.
#
# Exit status: 0 only when the cargo tests and every litmus test pass.
# The last line is `litmus: N passed, M failed`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$(pwd)

# Litmus suites to run (all five by default); e.g. LITMUS_SUITES="basic locks".
LITMUS_SUITES=${LITMUS_SUITES:-"basic copymove props locks http"}
# The server binary used for litmus (the e2e tests read the same variable).
# Everything builds and tests in release: wasmtime is then built once, and a
# release host compiles the component at start-up ten times faster.
EDGEDAV_BIN=${EDGEDAV_BIN:-"$REPO/target/release/edgedav"}
export EDGEDAV_BIN
# Seconds a server may take to print its listening line.
STARTUP_TIMEOUT=${STARTUP_TIMEOUT:-180}

log() { printf '\n==> %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# ---------------------------------------------------------------- cleanup
# Everything started or created here is registered and undone on exit.
PIDS=()
TMPDIRS=()
cleanup() {
    local pid dir
    for pid in "${PIDS[@]+"${PIDS[@]}"}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    for dir in "${TMPDIRS[@]+"${TMPDIRS[@]}"}"; do
        rm -rf "$dir"
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

new_tmpdir() {
    local d
    d=$(mktemp -d "${TMPDIR:-/tmp}/edgedav-$1.XXXXXX")
    TMPDIRS+=("$d")
    printf '%s\n' "$d"
}

# ---------------------------------------------------------------- setup
ensure_toolchain() {
    log "toolchain (rust-toolchain.toml)"
    # Installs the channel, components and targets named in
    # rust-toolchain.toml; for an already-installed toolchain it adds a
    # missing target, which a plain cargo invocation would not do.
    # (rustup older than 1.28 has no argument-less form; there `rustup show`
    # installs the toolchain file's toolchain.)
    rustup toolchain install || rustup show
    rustup target add wasm32-wasip2
    rustc --version
}

# Debian packages the tests drive: the litmus suite and two real clients
# (rclone, cadaver) used by tests/tests/clients.rs.
ensure_packages() {
    local missing=() tool
    for tool in litmus rclone cadaver; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
    done
    if ((${#missing[@]} == 0)); then
        return
    fi
    log "installing ${missing[*]}"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
}

# ---------------------------------------------------------------- server
# start_server VAR_PREFIX [serve args...]: starts $EDGEDAV_BIN on a
# free port and sets ${VAR_PREFIX}_URL and ${VAR_PREFIX}_PID.
start_server() {
    local prefix=$1
    shift
    local dir out pid url i
    dir=$(new_tmpdir server)
    out="$dir/stdout"
    "$EDGEDAV_BIN" serve --listen 127.0.0.1:0 "$@" >"$out" 2>"$dir/stderr" &
    pid=$!
    PIDS+=("$pid")
    for ((i = 0; i < STARTUP_TIMEOUT * 10; i++)); do
        if url=$(grep -o 'listening on http://[^[:space:]]*' "$out" 2>/dev/null); then
            url=${url#listening on }
            printf -v "${prefix}_URL" '%s' "${url%/}"
            printf -v "${prefix}_PID" '%s' "$pid"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "edgedav exited before listening; stderr:" >&2
            tail -n 50 "$dir/stderr" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "edgedav did not print its listening line within ${STARTUP_TIMEOUT}s; stderr:" >&2
    tail -n 50 "$dir/stderr" >&2
    return 1
}

stop_server() {
    local pid=$1
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------- litmus
LITMUS_PASSED=0
LITMUS_FAILED=0

# run_litmus LABEL URL: runs each suite against URL (litmus works in
# URL/litmus/, which it creates) and adds to LITMUS_PASSED/LITMUS_FAILED.
run_litmus() {
    local label=$1 url=$2
    local work suite out rc line run passed failed
    work=$(new_tmpdir litmus)
    for suite in $LITMUS_SUITES; do
        out="$work/$suite.out"
        log "litmus $suite ($label)"
        rc=0
        # litmus writes debug.log and child.log into its working directory.
        (cd "$work" && TESTS="$suite" litmus "$url/") >"$out" 2>&1 || rc=$?
        cat "$out"
        line=$(grep -E "summary for \`$suite'" "$out" | tail -n 1 || true)
        if [[ $line =~ of\ ([0-9]+)\ tests\ run:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
            run=${BASH_REMATCH[1]}
            passed=${BASH_REMATCH[2]}
            failed=${BASH_REMATCH[3]}
            # Tests run but not counted as passed (e.g. aborted) count as failed.
            if ((passed + failed < run)); then
                failed=$((run - passed))
            fi
        else
            echo "litmus $suite: no summary line (exit $rc)" >&2
            passed=0
            failed=1
        fi
        if ((rc != 0 && failed == 0)); then
            echo "litmus $suite exited with $rc" >&2
            failed=1
        fi
        if ((failed > 0)) && [ -f "$work/debug.log" ]; then
            echo "---- last lines of litmus debug.log ($suite) ----"
            tail -n 60 "$work/debug.log"
            echo "----"
        fi
        LITMUS_PASSED=$((LITMUS_PASSED + passed))
        LITMUS_FAILED=$((LITMUS_FAILED + failed))
    done
}

litmus_local_disk() {
    local root
    root=$(new_tmpdir root)
    start_server LOCAL --root "$root"
    log "edgedav (local disk, $root) on $LOCAL_URL"
    run_litmus "local disk" "$LOCAL_URL"
    stop_server "$LOCAL_PID"
}

# Hook for more backends: later runs (e.g. an S3 backend against a local
# Garage) start their server here and call `run_litmus LABEL URL`.
litmus_other_backends() {
    :
}

# ---------------------------------------------------------------- main
main() {
    ensure_toolchain
    ensure_packages

    log "cargo build --release -p edgedav"
    cargo build --release -p edgedav

    log "cargo test --workspace --release"
    local cargo_rc=0
    cargo test --workspace --release || cargo_rc=$?

    litmus_local_disk
    litmus_other_backends

    echo
    if ((cargo_rc != 0)); then
        echo "cargo test --workspace --release FAILED (exit $cargo_rc)"
    else
        echo "cargo test --workspace --release passed"
    fi
    echo "litmus: $LITMUS_PASSED passed, $LITMUS_FAILED failed"
    if ((cargo_rc != 0 || LITMUS_FAILED != 0)); then
        exit 1
    fi
}

# Run main only when executed, so the functions can be sourced for debugging.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    main "$@"
fi
