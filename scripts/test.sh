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
# shellcheck source=lib.sh
source "$REPO/scripts/lib.sh"
# shellcheck source=garage.sh
source "$REPO/scripts/garage.sh"
# shellcheck source=s3-litmus.sh
source "$REPO/scripts/s3-litmus.sh"
CLEANUP_HOOKS+=(garage_stop)

# Everything builds and tests in release (EDGEDAV_BIN defaults to
# target/release/edgedav, see lib.sh): wasmtime is then built once, and a
# release host compiles the component at start-up ten times faster.

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

litmus_local_disk() {
    local root
    root=$(new_tmpdir root)
    start_server LOCAL --root "$root"
    log "edgedav (local disk, $root) on $LOCAL_URL"
    run_litmus "local disk" "$LOCAL_URL"
    stop_server "$LOCAL_PID"
}


# ---------------------------------------------------------------- main
main() {
    ensure_toolchain
    ensure_packages
    garage_ensure_installed

    log "cargo build --release -p edgedav"
    cargo build --release -p edgedav

    # A running Garage makes the S3 end-to-end tests (tests/tests/s3.rs) run.
    garage_start

    log "cargo test --workspace --release"
    local cargo_rc=0
    cargo test --workspace --release || cargo_rc=$?

    litmus_local_disk
    litmus_s3

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
