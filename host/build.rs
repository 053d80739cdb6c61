//! Builds the handler component and hands it to the host for embedding,
//! both as wasm and precompiled to native code.
//!
//! Users run one `cargo build`; this script runs the nested
//! `cargo build --release --target wasm32-wasip2 -p edgedav-handler` itself.
//! The nested build uses its own target directory (`target/handler`) because
//! the outer cargo holds the lock on the main one, and it runs without the
//! outer build's flags and profile settings, which are meant for the host
//! target and would otherwise leak into the wasm build.
//!
//! Compiling the component with Cranelift takes seconds; doing it here, with
//! the engine settings the host uses (`src/runtime/codegen.rs`, shared by both), lets
//! the host start in milliseconds. The host falls back to compiling the wasm
//! when the precompiled code does not fit its engine (another CPU, say).

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[path = "src/runtime/codegen.rs"]
mod codegen;

/// Environment of the outer build that must not reach the nested one.
const LEAKING_VARS: &[&str] = &[
    "RUSTFLAGS",
    "RUSTDOCFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_ENCODED_RUSTDOCFLAGS",
    "RUSTC_WORKSPACE_WRAPPER",
];
const LEAKING_PREFIXES: &[&str] = &["CARGO_BUILD_", "CARGO_TARGET_", "CARGO_PROFILE_"];

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir.parent().unwrap();
    for watched in [
        "handler/src",
        "handler/Cargo.toml",
        "wit",
        "Cargo.lock",
        // The workspace manifest holds the handler's release profile.
        "Cargo.toml",
        "host/src/runtime/codegen.rs",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }

    let target_dir = workspace.join("target").join("handler");
    let wasm = build_handler(workspace, &target_dir);
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    let wasm = std::fs::read(&wasm).unwrap_or_else(|e| panic!("reading {}: {e}", wasm.display()));
    write(&out_dir.join("edgedav_handler.wasm"), &wasm);
    write(&out_dir.join("edgedav_handler.cwasm"), &precompile(&wasm));
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// The handler compiled for the target with the host's code settings; empty
/// when cross-compiling (the host then compiles it when it starts).
fn precompile(wasm: &[u8]) -> Vec<u8> {
    if env::var("TARGET").unwrap() != env::var("HOST").unwrap() {
        println!(
            "cargo:warning=cross-compiling: the handler is compiled when edgedav starts, not now"
        );
        return Vec::new();
    }
    let engine = wasmtime::Engine::new(&codegen::config())
        .unwrap_or_else(|e| panic!("creating the engine to precompile the handler: {e:?}"));
    engine
        .precompile_component(wasm)
        .unwrap_or_else(|e| panic!("precompiling the handler component: {e:?}"))
}

fn build_handler(workspace: &Path, target_dir: &Path) -> PathBuf {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "-p",
            "edgedav-handler",
        ])
        .arg("--target-dir")
        .arg(target_dir)
        // Cargo parses this script's stdout; keep the nested build's output off it.
        .stdout(Stdio::from(std::io::stderr()));
    for (name, _) in env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if LEAKING_VARS.contains(&name) || LEAKING_PREFIXES.iter().any(|p| name.starts_with(p)) {
            command.env_remove(name);
        }
    }

    let status = command
        .status()
        .unwrap_or_else(|e| panic!("could not run cargo to build the handler component: {e}"));
    if !status.success() {
        panic!(
            "building the handler component failed ({status}); run \
             `cargo build --release --target wasm32-wasip2 -p edgedav-handler` for details \
             (is the wasm32-wasip2 target installed? `rustup target add wasm32-wasip2`)"
        );
    }
    let wasm = target_dir.join("wasm32-wasip2/release/edgedav_handler.wasm");
    assert!(
        wasm.is_file(),
        "the handler build did not produce {}",
        wasm.display()
    );
    wasm
}
