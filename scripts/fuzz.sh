#!/usr/bin/env bash
# Runs every fuzz target of the handler (handler/fuzz) for a bounded time.
#
#   ./scripts/fuzz.sh              # 20 s per target
#   FUZZ_SECONDS=300 ./scripts/fuzz.sh
#
# cargo-fuzz needs nightly-only flags (-Z, the sanitizer); the stable
# toolchain accepts them with RUSTC_BOOTSTRAP=1. Installs cargo-fuzz when
# missing. Each target starts from its committed seeds in
# handler/fuzz/corpus/<target>/; new inputs libFuzzer finds go to a temporary
# directory, so a run leaves the repository as it was. A crashing input is
# kept in handler/fuzz/artifacts/<target>/ (ignored by git).
#
# Exit status: non-zero when any target crashed (or failed to build).
# Prints one line per target: executions and time.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../handler/fuzz"
seconds=${FUZZ_SECONDS:-20}
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo fuzz build
failed=()
summary=()
for target in $(cargo fuzz list); do
    mkdir -p "$work/$target"
    echo "== $target (${seconds}s)"
    # The first corpus directory receives new inputs; the seeds are only read.
    if cargo fuzz run "$target" "$work/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 >"$work/$target.log" 2>&1; then
        summary+=("$target: $(grep -E '^Done [0-9]+ runs' "$work/$target.log" | tail -1)")
    else
        # The panic or sanitizer report, then how libFuzzer ended.
        grep -m1 -A12 -E "panicked at|==ERROR|ERROR: libFuzzer" "$work/$target.log" || tail -40 "$work/$target.log"
        failed+=("$target")
        summary+=("$target: CRASHED (input in handler/fuzz/artifacts/$target/)")
    fi
done

printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: crashes in ${failed[*]}" >&2
    exit 1
fi
echo "fuzz: no crashes"
