#!/usr/bin/env bash
# Runs the litmus WebDAV suites against edgedav on the S3 backend, with a
# local single-node Garage as the store.
#
#   ./scripts/s3-litmus.sh
#
# Starts Garage (installing it with cargo if missing, see scripts/garage.sh),
# builds and starts target/release/edgedav (or EDGEDAV_BIN) with `--s3-…`
# flags on a free port of 127.0.0.1, runs the suites (LITMUS_SUITES, all five
# by default) and stops both. Exits 0 only when every litmus test passed; the
# last line is `litmus (S3): N passed, M failed`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$(pwd)
# shellcheck source=lib.sh
source "$REPO/scripts/lib.sh"
# shellcheck source=garage.sh
source "$REPO/scripts/garage.sh"
CLEANUP_HOOKS+=(garage_stop)

# litmus_s3: litmus against an S3-backed server on a running Garage; the
# server logs its S3 request count when it stops.
litmus_s3() {
    start_server S3 "${GARAGE_EDGEDAV_ARGS[@]}" --s3-prefix "litmus-$(date +%s)-$$"
    log "edgedav on S3 ($EDGEDAV_S3_ENDPOINT) at $S3_URL"
    run_litmus "S3" "$S3_URL"
    stop_server "$S3_PID"
    grep -h "S3 backend closed" "$S3_LOG" || true
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    command -v litmus >/dev/null 2>&1 || { echo "litmus is not installed (apt-get install litmus)" >&2; exit 1; }
    build_workspace
    garage_ensure_installed
    garage_start
    litmus_s3
    echo
    echo "litmus (S3): $LITMUS_PASSED passed, $LITMUS_FAILED failed"
    ((LITMUS_FAILED == 0))
fi
