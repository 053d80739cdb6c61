# shellcheck shell=bash
# Helpers shared by the test scripts: logging, cleanup on exit, starting an
# edgedav server on a free port, and running the litmus suites. Source it:
#
#   source scripts/lib.sh
#   new_tmpdir ROOT root; start_server LOCAL --root "$ROOT"   # sets LOCAL_URL, LOCAL_PID
#   run_litmus "local disk" "$LOCAL_URL"             # adds to LITMUS_PASSED/FAILED
#
# Callers set EDGEDAV_BIN (the server binary), LITMUS_SUITES and
# STARTUP_TIMEOUT, or get the defaults below.

# Sourcing twice (scripts that source each other) must not reset the state.
[ -n "${EDGEDAV_LIB_LOADED:-}" ] && return 0
EDGEDAV_LIB_LOADED=1

LIB_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
EDGEDAV_BIN=${EDGEDAV_BIN:-"$LIB_REPO/target/release/edgedav"}
export EDGEDAV_BIN
LITMUS_SUITES=${LITMUS_SUITES:-"basic copymove props locks http"}
STARTUP_TIMEOUT=${STARTUP_TIMEOUT:-180}

log() { printf '\n==> %s\n' "$*"; }

# build_workspace: the one native build of every script. cargo unifies
# dependency features over the packages an invocation selects, so `-p edgedav`
# and `-p edgedav-spin-testhost` and `cargo test --workspace` would each build
# wasmtime with a different feature set; building the whole workspace with
# all its targets once makes every later `cargo test --release --workspace`
# reuse it (target/release/edgedav and edgedav-spin-testhost included).
build_workspace() {
    log "cargo build --release --workspace --all-targets"
    (cd "$LIB_REPO" && cargo build --release --workspace --all-targets)
}

# Phase timings: `phase NAME` closes the running phase and opens NAME;
# `phase_summary` prints them all (the slow one is then visible in CI logs).
PHASE_NAMES=()
PHASE_SECONDS=()
PHASE_STARTED=$SECONDS
PHASE_CURRENT=""
phase() {
    if [ -n "$PHASE_CURRENT" ]; then
        PHASE_NAMES+=("$PHASE_CURRENT")
        PHASE_SECONDS+=($((SECONDS - PHASE_STARTED)))
    fi
    PHASE_CURRENT=$1
    PHASE_STARTED=$SECONDS
}
phase_summary() {
    local i total=0
    phase ""
    echo
    echo "phase durations:"
    for i in "${!PHASE_NAMES[@]}"; do
        printf '  %-42s %5d s\n' "${PHASE_NAMES[$i]}" "${PHASE_SECONDS[$i]}"
        total=$((total + PHASE_SECONDS[i]))
    done
    printf '  %-42s %5d s\n' "total" "$total"
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# ---------------------------------------------------------------- cleanup
# Everything started or created here is registered and undone on exit.
PIDS=()
TMPDIRS=()
# Functions to run at exit (e.g. garage_stop), before the PIDs are killed.
CLEANUP_HOOKS=()
cleanup() {
    local pid dir hook
    for hook in "${CLEANUP_HOOKS[@]+"${CLEANUP_HOOKS[@]}"}"; do
        "$hook" || true
    done
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

# new_tmpdir VAR NAME: creates a directory removed at exit and stores its
# path in VAR (not printed: a command substitution would run in a subshell
# and lose the registration).
new_tmpdir() {
    local __new_dir
    __new_dir=$(mktemp -d "${TMPDIR:-/tmp}/edgedav-$2.XXXXXX")
    TMPDIRS+=("$__new_dir")
    printf -v "$1" '%s' "$__new_dir"
}

# ---------------------------------------------------------------- server
# start_server VAR_PREFIX [serve args...]: starts $EDGEDAV_BIN on a
# free port and sets ${VAR_PREFIX}_URL, ${VAR_PREFIX}_PID and
# ${VAR_PREFIX}_LOG (its stderr).
start_server() {
    local prefix=$1
    shift
    local dir out pid url i
    new_tmpdir dir server
    out="$dir/stdout"
    local listen=(--listen 127.0.0.1:0)
    # A config file names its own listeners.
    [ "${1:-}" = --config ] && listen=()
    "$EDGEDAV_BIN" serve "${listen[@]+"${listen[@]}"}" "$@" >"$out" 2>"$dir/stderr" &
    pid=$!
    PIDS+=("$pid")
    for ((i = 0; i < STARTUP_TIMEOUT * 10; i++)); do
        if url=$(grep -o 'listening on http://[^[:space:]]*' "$out" 2>/dev/null); then
            url=${url#listening on }
            printf -v "${prefix}_URL" '%s' "${url%/}"
            printf -v "${prefix}_PID" '%s' "$pid"
            printf -v "${prefix}_LOG" '%s' "$dir/stderr"
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

# run_litmus LABEL URL [USER PASSWORD]: runs each suite against URL (litmus works in
# URL/litmus/, which it creates) and adds to LITMUS_PASSED/LITMUS_FAILED.
run_litmus() {
    local label=$1 url=$2
    local credentials=("${@:3}")
    local work suite out rc line run passed failed
    new_tmpdir work litmus
    for suite in $LITMUS_SUITES; do
        out="$work/$suite.out"
        log "litmus $suite ($label)"
        rc=0
        # litmus writes debug.log and child.log into its working directory.
        (cd "$work" && TESTS="$suite" litmus "$url/" "${credentials[@]+"${credentials[@]}"}") >"$out" 2>&1 || rc=$?
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

