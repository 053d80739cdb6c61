#!/usr/bin/env bash
# Benchmark of the S3 backend against a local single-node Garage: prints, for
# a Depth-1 PROPFIND of N = 10, 1,000 and 10,000 objects, the S3 requests the
# server made (its own counter) and the time taken, then the server's peak
# RSS growth while a 1 GiB file is PUT and read back (tests/tests/s3_bench.rs).
#
#   ./scripts/bench-s3.sh
#
# EDGEDAV_BENCH_SIZES=10,1000 and EDGEDAV_S3_BIG_MIB=256 make a quicker run.
# Exits non-zero when a figure misses the targets (ceil(N/1000)+1 requests,
# RSS growth under 64 MiB).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$(pwd)
# shellcheck source=lib.sh
source "$REPO/scripts/lib.sh"
# shellcheck source=garage.sh
source "$REPO/scripts/garage.sh"
CLEANUP_HOOKS+=(garage_stop)

garage_ensure_installed
build_workspace
garage_start
export EDGEDAV_BIN=${EDGEDAV_BIN:-"$REPO/target/release/edgedav"}
cargo test --release --workspace --test s3_bench -- --ignored --nocapture
