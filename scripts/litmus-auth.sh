#!/usr/bin/env bash
# litmus against edgedav with authentication on.
#
#   ./scripts/litmus-auth.sh
#
# Starts the release binary (building it if missing) with a configuration
# file holding one user (HTTP Basic, argon2id hash made by
# `edgedav hash-password`), runs the five litmus suites (basic, copymove,
# props, locks, http) with that user's credentials, and stops the server.
# Standalone: needs only cargo (for the build) and litmus (apt-get install
# litmus; installed here when missing and running as root).
#
# Exit status: 0 only when every litmus test passes. The last line is
# `litmus (auth): N passed, M failed`.
# Variables: EDGEDAV_BIN (binary to test, default target/release/edgedav),
# LITMUS_SUITES (default "basic copymove props locks http"),
# STARTUP_TIMEOUT (seconds, default 180).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$(pwd)
EDGEDAV_BIN=${EDGEDAV_BIN:-"$REPO/target/release/edgedav"}
LITMUS_SUITES=${LITMUS_SUITES:-"basic copymove props locks http"}
STARTUP_TIMEOUT=${STARTUP_TIMEOUT:-180}
USER_NAME=litmus
USER_PASS="litmus-pass-$$-$RANDOM"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/edgedav-litmus-auth.XXXXXX")
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! command -v litmus >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y litmus
    else
        echo "litmus is not installed (apt-get install litmus)" >&2
        exit 1
    fi
fi
if [ ! -x "$EDGEDAV_BIN" ]; then
    echo "==> cargo build --release -p edgedav"
    cargo build --release -p edgedav
fi

HASH=$(printf '%s' "$USER_PASS" | "$EDGEDAV_BIN" hash-password)
cat >"$WORK/edgedav.toml" <<TOML
[[bindings]]
listen = "127.0.0.1:0"

[[users]]
name = "$USER_NAME"
password_hash = "$HASH"
home = { backend = "local", path = "home" }
TOML
"$EDGEDAV_BIN" check-config "$WORK/edgedav.toml"

"$EDGEDAV_BIN" serve --config "$WORK/edgedav.toml" >"$WORK/stdout" 2>"$WORK/stderr" &
SERVER_PID=$!
URL=
for ((i = 0; i < STARTUP_TIMEOUT * 10; i++)); do
    if grep -q '^edgedav ready' "$WORK/stdout" 2>/dev/null; then
        URL=$(grep -o 'listening on http://[^[:space:]]*' "$WORK/stdout" | head -n 1)
        URL=${URL#listening on }
        URL=${URL%/}
        break
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "edgedav exited before listening; stderr:" >&2
        tail -n 50 "$WORK/stderr" >&2
        exit 1
    fi
    sleep 0.1
done
if [ -z "$URL" ]; then
    echo "edgedav did not become ready within ${STARTUP_TIMEOUT}s" >&2
    tail -n 50 "$WORK/stderr" >&2
    exit 1
fi
echo "==> edgedav with authentication on $URL (user $USER_NAME)"

# Without credentials the server must refuse.
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/" || true)
if [ "$code" != 401 ]; then
    echo "expected 401 without credentials, got $code" >&2
    exit 1
fi

PASSED=0
FAILED=0
for suite in $LITMUS_SUITES; do
    echo
    echo "==> litmus $suite (with credentials)"
    out="$WORK/$suite.out"
    rc=0
    (cd "$WORK" && TESTS="$suite" litmus "$URL/" "$USER_NAME" "$USER_PASS") >"$out" 2>&1 || rc=$?
    cat "$out"
    line=$(grep -E "summary for \`$suite'" "$out" | tail -n 1 || true)
    if [[ $line =~ of\ ([0-9]+)\ tests\ run:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
        run=${BASH_REMATCH[1]}
        passed=${BASH_REMATCH[2]}
        failed=${BASH_REMATCH[3]}
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
    if ((failed > 0)) && [ -f "$WORK/debug.log" ]; then
        echo "---- last lines of litmus debug.log ($suite) ----"
        tail -n 60 "$WORK/debug.log"
    fi
    PASSED=$((PASSED + passed))
    FAILED=$((FAILED + failed))
done

if grep -q "$USER_PASS" "$WORK/stderr"; then
    echo "the password appears in the server log" >&2
    FAILED=$((FAILED + 1))
fi
echo
echo "litmus (auth): $PASSED passed, $FAILED failed"
((FAILED == 0))
