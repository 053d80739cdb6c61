#!/usr/bin/env bash
# Runs the litmus WebDAV suites against edgedav with authentication on: a
# config file with one user (argon2id hash from `edgedav hash-password`),
# litmus given the credentials. Also checks that a request without
# credentials gets 401 and that the password never reaches the server log.
#
#   ./scripts/litmus-auth.sh          # standalone; the last line is
#                                     # `litmus (auth): N passed, M failed`
#   source scripts/litmus-auth.sh     # defines litmus_auth for scripts/test.sh
set -euo pipefail

# shellcheck source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

# litmus_auth: adds its results to LITMUS_PASSED/LITMUS_FAILED.
litmus_auth() {
    local work user=litmus password="litmus-pass-$$-$RANDOM" hash code
    new_tmpdir work litmus-auth
    hash=$(printf '%s' "$password" | "$EDGEDAV_BIN" hash-password)
    cat >"$work/edgedav.toml" <<TOML
[[bindings]]
listen = "127.0.0.1:0"

[[users]]
name = "$user"
password_hash = "$hash"
home = { backend = "local", path = "home" }
TOML
    "$EDGEDAV_BIN" check-config "$work/edgedav.toml"
    start_server AUTH --config "$work/edgedav.toml"
    log "edgedav with authentication on $AUTH_URL (user $user)"
    code=$(curl -s -o /dev/null -w '%{http_code}' "$AUTH_URL/" || true)
    if [ "$code" != 401 ]; then
        echo "expected 401 without credentials, got $code" >&2
        LITMUS_FAILED=$((LITMUS_FAILED + 1))
    fi
    run_litmus "with authentication" "$AUTH_URL" "$user" "$password"
    stop_server "$AUTH_PID"
    if grep -q "$password" "$AUTH_LOG"; then
        echo "the password appears in the server log" >&2
        LITMUS_FAILED=$((LITMUS_FAILED + 1))
    fi
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    command -v litmus >/dev/null 2>&1 || { echo "litmus is not installed (apt-get install litmus)" >&2; exit 1; }
    [ -x "$EDGEDAV_BIN" ] || build_workspace
    litmus_auth
    echo
    echo "litmus (auth): $LITMUS_PASSED passed, $LITMUS_FAILED failed"
    ((LITMUS_FAILED == 0))
fi
