//! The handler component on the edge (issue 5): the compositions that
//! `scripts/edge.sh` builds with `wac plug`, run under stock `wasmtime serve`
//! or checked against Spin's world, plus partial updates on the native host.
//!
//! The composition tests need the files and tools `scripts/edge.sh` sets up
//! and skip, loudly, only when `EDGEDAV_EDGE_FS_WASM` is absent. With it set,
//! every other variable must be valid too:
//!
//! * `EDGEDAV_EDGE_FS_WASM`, `EDGEDAV_EDGE_SPIN_WASM`: the compositions;
//! * `EDGEDAV_EDGE_HANDLER_WASM`: the handler file they were composed from;
//! * `EDGEDAV_FS_ADAPTER_WASM`, `EDGEDAV_SPIN_ADAPTER_WASM`: the adapters
//!   on their own (for the storage conformance suite);
//! * `EDGEDAV_WASMTIME`, `EDGEDAV_WASM_TOOLS`: the tools;
//! * `EDGEDAV_EDGE_SPIN_WIT`, `EDGEDAV_EDGE_SPIN_WORLD`: the WIT directory
//!   (examples/spin/wit/edge.wit with spin-sdk 5.2.0's WIT as deps) and world;
//! * `EDGEDAV_SPIN_TESTHOST`: examples/spin-testhost, which serves the Spin
//!   composition as Spin would (Spin itself cannot be built here).

use std::path::{Path, PathBuf};
use std::process::Command;

use edgedav_tests::*;

const PARTIAL: &str = "application/x-sabredav-partialupdate";

struct EdgeEnv {
    fs_wasm: PathBuf,
    spin_wasm: PathBuf,
    handler_wasm: PathBuf,
    fs_adapter: PathBuf,
    spin_adapter: PathBuf,
    wasmtime: PathBuf,
    wasm_tools: PathBuf,
    spin_wit: PathBuf,
    spin_world: String,
    spin_testhost: PathBuf,
}

fn edge_env(test: &str) -> Option<EdgeEnv> {
    let Some(fs_wasm) = std::env::var_os("EDGEDAV_EDGE_FS_WASM") else {
        edgedav_tests::skip(&format!(
            "\n==================== SKIPPED {test} ====================\n\
             EDGEDAV_EDGE_FS_WASM is not set: this test needs the compositions and tools\n\
             that ./scripts/edge.sh builds and installs (run that script to run it).\n\
             ========================================================\n"
        ));
        return None;
    };
    let file = |var: &str| {
        let p = PathBuf::from(
            std::env::var_os(var)
                .unwrap_or_else(|| panic!("{var} is not set (EDGEDAV_EDGE_FS_WASM is)")),
        );
        assert!(p.is_file(), "{var}={} does not exist", p.display());
        p
    };
    let env = EdgeEnv {
        fs_wasm: PathBuf::from(fs_wasm),
        spin_wasm: file("EDGEDAV_EDGE_SPIN_WASM"),
        handler_wasm: file("EDGEDAV_EDGE_HANDLER_WASM"),
        fs_adapter: file("EDGEDAV_FS_ADAPTER_WASM"),
        spin_adapter: file("EDGEDAV_SPIN_ADAPTER_WASM"),
        wasmtime: file("EDGEDAV_WASMTIME"),
        wasm_tools: file("EDGEDAV_WASM_TOOLS"),
        spin_wit: PathBuf::from(
            std::env::var_os("EDGEDAV_EDGE_SPIN_WIT").expect("EDGEDAV_EDGE_SPIN_WIT is not set"),
        ),
        spin_world: std::env::var("EDGEDAV_EDGE_SPIN_WORLD")
            .expect("EDGEDAV_EDGE_SPIN_WORLD is not set"),
        spin_testhost: file("EDGEDAV_SPIN_TESTHOST"),
    };
    assert!(
        env.fs_wasm.is_file(),
        "EDGEDAV_EDGE_FS_WASM={} does not exist",
        env.fs_wasm.display()
    );
    assert!(
        env.spin_wit.is_dir(),
        "EDGEDAV_EDGE_SPIN_WIT={} is not a directory",
        env.spin_wit.display()
    );
    Some(env)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// FNV-1a, to name file contents in messages.
fn digest(bytes: &[u8]) -> String {
    let h = bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    });
    format!("{h:016x} ({} bytes)", bytes.len())
}

mod artifacts;
mod fs;
mod harness;
mod locks;
mod partial;
mod round_trips;
mod spin;

use self::harness::*;
