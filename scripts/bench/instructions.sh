#!/usr/bin/env bash
# Instructions the handler executes per request, natively (not as a
# component) on its in-memory store, counted by valgrind's callgrind:
# repeatable to the instruction where timings on a shared machine vary by a
# third, so a change to the handler's hot paths can be judged on them.
#
#   ./scripts/bench/instructions.sh [ITERS]
#
# Prints, for a Depth-1 PROPFIND of 1,000 files (allprop and 5 named
# properties), one of a folder of 5 files (5 named properties: `few`) and
# a GET of a 4 KiB file, the instructions per request:
# the count of ITERS requests (default 4) less that of none, divided by
# ITERS. The requests are handler/src/instructions.rs. Installs valgrind
# from Debian when missing.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=../lib.sh
source scripts/lib.sh
ITERS=${1:-4}

if ! command -v valgrind >/dev/null 2>&1; then
    log "installing valgrind"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y valgrind
fi

log "building the handler's unit tests"
BIN=$(cargo test --release -p edgedav-handler --lib --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "edgedav_handler":
        print(m["executable"])')
[ -x "$BIN" ] || { echo "the handler's test binary was not built" >&2; exit 1; }

OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
# total WHAT ITERS: the instructions of the whole test run.
total() {
    WHAT=$1 ITERS=$2 valgrind --tool=callgrind --callgrind-out-file="$OUT/$1.$2" \
        "$BIN" instructions::requests --exact --ignored --test-threads=1 >/dev/null 2>"$OUT/err" ||
        { cat "$OUT/err" >&2; exit 1; }
    awk '/^(summary|totals):/ { print $2; exit }' "$OUT/$1.$2"
}

log "instructions per request (callgrind, $ITERS requests less none)"
for what in allprop named few get; do
    none=$(total "$what" 0)
    some=$(total "$what" "$ITERS")
    printf '%-8s %12d\n' "$what" $(((some - none) / ITERS))
done
