#!/usr/bin/env bash
# Runs the S3 backend's end-to-end tests (tests/tests/s3.rs) against a local
# single-node Garage:
#
#   ./scripts/s3-tests.sh [extra cargo test arguments]
#
# Starts Garage (installing it with cargo if missing, see scripts/garage.sh),
# builds the server in release mode, runs
# `cargo test --release --workspace --test s3` with EDGEDAV_BIN pointing
# at target/release/edgedav and the S3 environment exported, and stops Garage.
# EDGEDAV_S3_BIG_MIB (default 1024) sizes the big-file test.
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
printf '==> cargo test --release --workspace --test s3\n'
cargo test --release --workspace --test s3 "$@" -- --nocapture
